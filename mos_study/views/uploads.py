"""Researchers upload their own method's x4 outputs of a dataset: /dashboard/upload/.

Each file is limited in bytes (``SRMOS_MAX_UPLOAD_BYTES``) and pixels, recognised by its content (PNG, JPEG or WebP
signature, whatever its name says) and decoded by ``sr_models.imageio.read_image``, which refuses decompression bombs
from the header before decoding. The pixels are re-encoded as bare PNGs in a private staging folder and handed to
``services.benchmark.import_and_record`` (as ``manage.py import_method`` does), which matches them to the dataset's
images, measures and records them; the staging folder is removed whatever happens.

The uploader owns the method (``Method.owner``): another researcher uploading under its name gets 409. A refused
upload changes no row (the import runs in one transaction, its benchmark run included), and a full disk is a 507
saying so, not a 500.
"""

import errno
import logging

import re
import shutil
import tempfile
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse_lazy

from sr_models.errors import ImageError, SRMOSError
from sr_models.imageio import read_image, write_png

from ..security import rate_limit
from .dashboard import researcher_required

logger = logging.getLogger(__name__)
UPLOAD_MAX_PIXELS = 25_000_000  # a 5000x5000 output; well above any x4 test-set image, far below a bomb
SIGNATURES = {"png": (b"\x89PNG\r\n\x1a\n",), "jpeg": (b"\xff\xd8\xff",), "webp": (b"RIFF",)}
SAFE_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,150}")


def image_kind(head):
    """'png', 'jpeg' or 'webp' from a file's first bytes, or None."""
    for kind, prefixes in SIGNATURES.items():
        if head.startswith(prefixes) and (kind != "webp" or head[8:12] == b"WEBP"):
            return kind
    return None


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.FileField):
    """Several image files; each checked for size, name and content signature (decoding comes later)."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data] if data else []
        if not files:
            raise forms.ValidationError("choose the image files to upload")
        limit, stems = settings.SRMOS_MAX_UPLOAD_BYTES, set()
        for upload in files:
            upload = super().clean(upload, initial)
            stem = Path(Path(upload.name).name).stem  # never a path from the client
            if not SAFE_STEM.fullmatch(stem):
                raise forms.ValidationError(f"{upload.name!r}: name files like img_001.png (letters, digits, _ . + -)")
            if stem in stems:
                raise forms.ValidationError(f"{upload.name!r}: two files have the same name")
            stems.add(stem)
            if upload.size > limit:
                raise forms.ValidationError(f"{stem}: {upload.size} bytes; at most {limit} bytes per image")
            upload.seek(0)
            if image_kind(upload.read(16)) is None:
                raise forms.ValidationError(f"{stem}: not a PNG, JPEG or WebP image (judged by its content)")
            upload.seek(0)
        return files


def dataset_choices():
    from sr_models.datasets import available

    return [(name, name) for name in available(settings.SRMOS_DATA_DIR)]


class UploadOutputsForm(forms.Form):
    name = forms.RegexField(
        regex=r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$",
        max_length=100,
        label="Method name",
        error_messages={"invalid": "use letters, digits and _ . + - (e.g. my-gan-v2)"},
    )
    # A choice, never a free path: the dataset must be one of the server's own.
    dataset = forms.ChoiceField(choices=dataset_choices)
    description = forms.CharField(max_length=500, required=False)
    files = MultipleImageField(help_text="one x4 output per test image, named after it (img_001.png ...)")


def stage_images(files, folder):
    """Decode every upload safely and write it as a bare PNG named after the image; raise SRMOSError if unfit."""
    for upload in files:
        stem = Path(Path(upload.name).name).stem
        with tempfile.NamedTemporaryFile(suffix=".upload") as raw:
            for chunk in upload.chunks():
                raw.write(chunk)
            raw.flush()
            try:
                pixels = read_image(raw.name, max_pixels=UPLOAD_MAX_PIXELS)
            except ImageError as error:  # name the researcher's file, not our temporary one
                raise ImageError(f"{stem}: {str(error).replace(raw.name + ': ', '').replace(raw.name, stem)}") from None
        write_png(Path(folder) / f"{stem}.png", pixels)


@researcher_required
@permission_required("mos_study.add_method", raise_exception=True)
@rate_limit("upload", token_of=lambda request: request.user.pk)
def upload_outputs(request):
    from ..services.benchmark import MethodNotYours, check_owner, import_and_record  # torch only for this page

    form = UploadOutputsForm(request.POST or None, request.FILES or None)
    status = 400 if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            check_owner(data["name"], request.user)
        except MethodNotYours as error:
            form.add_error("name", str(error))
            return render(request, "mos_study/upload.html", {"form": form}, status=409)
        folder = None
        try:
            folder = Path(tempfile.mkdtemp(prefix="srmos-upload-"))
            stage_images(data["files"], folder)
            with transaction.atomic():  # a refused import leaves no rows, its benchmark run included
                run = import_and_record(
                    data["name"],
                    data["dataset"],
                    folder,
                    progress=False,
                    description=data["description"],
                    owner=request.user,
                )
        except MethodNotYours as error:
            form.add_error("name", str(error))
            status = 409
        except SRMOSError as error:
            form.add_error(None, str(error).replace(f"in {folder} ", "").replace(str(folder), "the upload"))
        except OSError as error:  # a full disk, a quota, a read-only volume: say so, no 500
            full = error.errno in (errno.ENOSPC, errno.EDQUOT)
            logger.error("upload of %r refused: %s: %s", data["name"], type(error).__name__, error)
            form.add_error(
                None,
                "The server has no space left to store the upload; nothing was recorded. Tell the operator, "
                "then try again."
                if full
                else f"The server could not store the upload ({error.strerror or error}); nothing was recorded.",
            )
            status = 507 if full else 503
        else:
            messages.success(
                request,
                f"{data['name']}: {len(run.rows)} outputs of {data['dataset']} measured and "
                f"recorded (benchmark run {run.pk}); add it to a study like any method.",
            )
            return redirect(reverse_lazy("mos_study:dashboard"))
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
    return render(request, "mos_study/upload.html", {"form": form}, status=status)
