"""Error pages. ``csrf_failure`` answers JSON to the rating page's script (settings.CSRF_FAILURE_VIEW)."""

from django.views.csrf import csrf_failure as html_csrf_failure

from ..http import json_error


def csrf_failure(request, reason=""):
    if "application/json" in request.headers.get("Accept", "") or request.content_type == "application/json":
        return json_error(
            "the security token (CSRF) is missing or wrong: reload the page and try again", 403, "csrf_failed"
        )
    return html_csrf_failure(request, reason=reason)
