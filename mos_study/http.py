"""The one JSON error shape of the app: ``{"error": code, "message": text, ...extra fields}``.

``code`` is a stable snake_case word a script can branch on (``rating_conflict``, ``rate_limited``, ...), ``message``
a sentence for people; extra fields carry what the code needs, e.g. ``retry_after`` (seconds) with ``rate_limited``.
Used by the views (``views.common``) and by the rate limits (``security``).
"""

from django.http import JsonResponse


def json_error(message, status, code="bad_request", **extra):
    """A 4xx answer that scripts can read: ``{"error": code, "message": message, **extra}``."""
    return JsonResponse({"error": code, "message": message, **extra}, status=status)
