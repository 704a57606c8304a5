"""Small helpers shared by the views."""

import json

from django.utils.translation import gettext_lazy as _

from ..http import json_error
from ..services.errors import StudyError


def study_error_response(error: StudyError):
    code = "".join(f"_{c.lower()}" if c.isupper() else c for c in type(error).__name__).lstrip("_")
    return json_error(str(error), error.status, code)


def read_json(request):
    """The request body as a JSON object, or raise StudyError."""
    try:
        payload = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise StudyError(_('the request body must be JSON, e.g. {"trial": "...", "score": 3}')) from None
    if not isinstance(payload, dict):
        raise StudyError(_("the request body must be a JSON object"))
    return payload
