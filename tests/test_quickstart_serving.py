"""The quick start serves the rater page's JavaScript and CSS without DEBUG and without collectstatic."""

import pytest
from django.test import Client, override_settings


@pytest.mark.django_db
@override_settings(DEBUG=False)
@pytest.mark.parametrize("path", ["/static/mos_study/rate.js"])
def test_static_files_are_served_without_debug_or_collectstatic(path):
    response = Client().get(path)
    assert response.status_code == 200
    assert b"".join(response.streaming_content)
