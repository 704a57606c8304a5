"""Researchers upload their own method's x4 outputs of a dataset: /dashboard/upload/.

Each file is limited in bytes (``SRMOS_MAX_UPLOAD_BYTES``) and pixels, recognised by its content (PNG, JPEG or WebP
signature, whatever its name says) and decoded by ``sr_models.imageio.read_image``, which refuses decompression bombs
from the header before decoding. The pixels are re-encoded as bare PNGs in a private staging folder and handed to
``services.benchmark.import_and_record`` (as ``manage.py import_method`` does), which matches them to the dataset's
images, measures and records them; the staging folder is removed whatever happens.
"""

import re
import shutil
import tempfile
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import redirect, render
from django.urls import reverse_lazy

from sr_models.errors import ImageError, SRMOSError
from sr_models.imageio import read_image, write_png

from ..security import rate_limit
from .dashboard import researcher_required

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
    from ..services.benchmark import import_and_record  # loads the benchmark (torch) only for this page

    form = UploadOutputsForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        folder = Path(tempfile.mkdtemp(prefix="srmos-upload-"))
        try:
            stage_images(data["files"], folder)
            run = import_and_record(
                data["name"], data["dataset"], folder, progress=False, description=data["description"]
            )
        except SRMOSError as error:
            form.add_error(None, str(error).replace(f"in {folder} ", "").replace(str(folder), "the upload"))
        else:
            messages.success(
                request,
                f"{data['name']}: {len(run.rows)} outputs of {data['dataset']} measured and "
                f"recorded (benchmark run {run.pk}); add it to a study like any method.",
            )
            return redirect(reverse_lazy("mos_study:dashboard"))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    status = 400 if request.method == "POST" else 200
    return render(request, "mos_study/upload.html", {"form": form}, status=status)
