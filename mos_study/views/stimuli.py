"""Stimulus images under opaque URLs: /i/<token>.png (a trial's, a pairwise side's or a stimulus's token), with
no hint of the method in name or bytes.

Blinding covers the bytes too. Every stimulus of one test image in a study is served at the same byte length: the
PNG gets one private ancillary chunk ``srMo`` (ignored by decoders, pixels unchanged) padding it to the largest of
that image's files plus a nonce, so neither ``Content-Length`` nor the size the page receives tells nn from HR. The
nonce is derived from the trial's token (HMAC with the secret key), so each presentation, a repeat included, is
different bytes, while one trial's image is the same bytes on every request (retries, caches).
"""

import hashlib
import hmac
import struct
import zlib
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpResponse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from ..models import Stimulus, Trial
from ..services import pairwise_sessions

PAD_CHUNK = b"srMo"  # ancillary (s), private (r), reserved bit clear (M), safe to copy (o): decoders skip it
NONCE_BYTES = 16
CHUNK_OVERHEAD = 12  # length, type and CRC around a chunk's data
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def stimulus_for_token(token):
    """The stimulus behind a trial token (what raters get) or a stimulus token (previews)."""
    trial = Trial.objects.select_related("stimulus__output").filter(token=token).first()
    if trial is not None:
        if trial.stimulus_b_id is not None:  # a pairwise trial's images have their own tokens, one per side
            raise Http404("no such image")
        return trial.stimulus
    side = pairwise_sessions.trial_for_image_token(token)
    if side is not None:
        return side[1]
    stimulus = Stimulus.objects.select_related("output").filter(token=token).first()
    if stimulus is None:
        raise Http404("no such image")
    return stimulus


def media_path(output):
    media_root = Path(settings.MEDIA_ROOT).resolve()
    path = (media_root / output.file).resolve()
    if not path.is_relative_to(media_root) or not path.is_file():
        raise Http404("image file missing")
    return path


def padded_size(stimulus):
    """The byte length every stimulus of this one's test image in its study is served at."""
    siblings = Stimulus.objects.filter(study_id=stimulus.study_id, output__image_id=stimulus.output.image_id)
    files = set(siblings.values_list("output__file", flat=True)) | {stimulus.output.file}
    media_root = Path(settings.MEDIA_ROOT)
    largest = max((media_root / name).stat().st_size for name in files if (media_root / name).is_file())
    return largest + CHUNK_OVERHEAD + NONCE_BYTES


def nonce(token):
    return hmac.new(settings.SECRET_KEY.encode(), b"srmos-image:" + token.encode(), hashlib.sha256).digest()[
        :NONCE_BYTES
    ]


def pad_png(data, size, nonce_bytes):
    """``data`` with one ``srMo`` chunk (the nonce, then zeros) before IEND, ``size`` bytes in all."""
    if not data.startswith(PNG_SIGNATURE) or data[-12:-8] != b"\x00\x00\x00\x00" or data[-8:-4] != b"IEND":
        raise ValueError("not a PNG that ends with its IEND chunk")
    body = nonce_bytes + b"\x00" * (size - len(data) - CHUNK_OVERHEAD - len(nonce_bytes))
    if len(body) < len(nonce_bytes):
        raise ValueError(f"a PNG of {len(data)} bytes cannot be padded to {size}")
    crc = zlib.crc32(PAD_CHUNK + body) & 0xFFFFFFFF
    chunk = struct.pack(">I", len(body)) + PAD_CHUNK + body + struct.pack(">I", crc)
    return data[:-12] + chunk + data[-12:]


@require_safe
def image(request, token):
    stimulus = stimulus_for_token(token)
    data = media_path(stimulus.output).read_bytes()
    try:
        data = pad_png(data, padded_size(stimulus), nonce(token))
    except ValueError:
        raise Http404("image file is not a stored PNG") from None
    # No Content-Disposition (it would name the file, its content hash); Content-Length is the padded length.
    response = HttpResponse(data, content_type="image/png")
    response["Content-Length"] = str(len(data))
    patch_cache_control(response, private=True, max_age=24 * 3600)
    return response
