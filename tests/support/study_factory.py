"""Stored outputs without running the benchmark: small PNGs and their rows, for the study tests."""

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from mos_study.models import HR_METHOD, Method, Output, TestImage
from mos_study.services.study_setup import create_study

DATASET = "Set5"
IMAGES = ["img_001", "img_002", "img_003", "img_004", "img_005"]
METHODS = ["nn", "bicubic", "srgan-vgg54", HR_METHOD]


def png_bytes(seed, size=(24, 16)):
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def store_outputs(media_root, dataset=DATASET, images=IMAGES, methods=METHODS):
    """One content-addressed PNG and Output row per (image, method); returns the outputs."""
    outputs = []
    for i, name in enumerate(images):
        image = TestImage.objects.create(dataset=dataset, name=name, hr_sha256="0" * 64, width=24, height=16)
        for j, method_name in enumerate(methods):
            method, _ = Method.objects.get_or_create(name=method_name)
            data = png_bytes(1000 * i + j)
            sha = hashlib.sha256(data).hexdigest()
            path = Path(media_root) / "outputs" / f"{sha}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            outputs.append(
                Output.objects.create(
                    method=method, image=image, sha256=sha, file=f"outputs/{sha}.png", width=24, height=16
                )
            )
    return outputs


def stored_study(media_root, name, **options):
    """``store_outputs(media_root)``, then study ``name``: Set5's nn, bicubic and srgan-vgg54 outputs beside HR
    (``options``: more ``create_study`` arguments; the benchmark never runs)."""
    store_outputs(media_root)
    return create_study(name, [DATASET], METHODS[:-1], include_hr=True, run_missing=False, **options)


def study_people(study, settings):
    """An owner, a listed researcher, a stranger and a superuser around ``study`` (all with password "pw")."""
    from django.contrib.auth.models import User

    from mos_study.models import Study

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast: these are test users
    owner = User.objects.create_user("owner", password="pw")
    listed = User.objects.create_user("listed", password="pw")
    stranger = User.objects.create_user("stranger", password="pw")
    boss = User.objects.create_superuser("boss", password="pw")
    Study.objects.filter(pk=study.pk).update(owner=owner)
    study.researchers.add(listed)
    return {"owner": owner, "listed": listed, "stranger": stranger, "boss": boss}
