"""Small helpers shared by the views."""
import json

from django.http import JsonResponse

from ..services.study import StudyError


def json_error(message, status, code="bad_request"):
    """A 4xx answer that scripts can read: {"error": code, "message": text}."""
    return JsonResponse({"error": code, "message": message}, status=status)


def study_error_response(error: StudyError):
    code = "".join(f"_{c.lower()}" if c.isupper() else c for c in type(error).__name__).lstrip("_")
    return json_error(str(error), error.status, code)


def read_json(request):
    """The request body as a JSON object, or raise StudyError."""
    try:
        payload = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError):
        raise StudyError("the request body must be JSON, e.g. {\"trial\": \"...\", \"score\": 3}") from None
    if not isinstance(payload, dict):
        raise StudyError("the request body must be a JSON object")
    return payload
