"""The script mode of test files that run themselves in a subprocess (``python tests/.../test_x.py``), so that the
app's settings come from the environment (DATABASE_URL, SRMOS_MEDIA_ROOT) as a deployment's would.

Such a script puts the checkout on ``sys.path`` first (it starts with its own folder there), then calls
``set_up_django``.
"""

import os


def set_up_django(methods):
    """Django on ``config.settings`` (unless DJANGO_SETTINGS_MODULE names others), migrated, with the stored outputs
    of ``methods`` on Set5 (``tests.support.study_factory.store_outputs``) under MEDIA_ROOT."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from tests.support.study_factory import store_outputs

    call_command("migrate", verbosity=0)
    store_outputs(settings.MEDIA_ROOT, methods=methods)
