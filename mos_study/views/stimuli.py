"""Stimulus images under opaque URLs: /i/<trial or stimulus token>.png, with no hint of the method."""

from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from ..models import Stimulus, Trial


def output_for_token(token):
    """The output behind a trial token (what raters get) or a stimulus token (previews)."""
    trial = Trial.objects.select_related("stimulus__output").filter(token=token).first()
    if trial is not None:
        return trial.stimulus.output
    stimulus = Stimulus.objects.select_related("output").filter(token=token).first()
    if stimulus is None:
        raise Http404("no such image")
    return stimulus.output


@require_safe
def image(request, token):
    output = output_for_token(token)
    media_root = Path(settings.MEDIA_ROOT).resolve()
    path = (media_root / output.file).resolve()
    if not path.is_relative_to(media_root) or not path.is_file():
        raise Http404("image file missing")
    response = FileResponse(path.open("rb"), content_type="image/png")
    # FileResponse would name the file (its content hash) in Content-Disposition: say nothing at all.
    del response["Content-Disposition"]
    patch_cache_control(response, private=True, max_age=24 * 3600)
    return response
