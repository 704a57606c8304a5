"""Uploading a method's own outputs: logged-in researchers with permission only; size, type (by content) and pixel
limits; safe decoding (bombs, truncated files); a refused upload stores nothing and leaves no staging files."""

import io
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from mos_study.models import BenchmarkRun, Method, Metric, Output
from sr_models.imageio import read_image
from sr_models.resize import imresize

pytestmark = pytest.mark.django_db
URL = reverse("mos_study:upload_outputs")
IMAGES = [f"img_{i:03d}" for i in range(1, 6)]


@pytest.fixture(autouse=True)
def places(settings, tmp_path, embedded_datasets, monkeypatch):
    cache.clear()
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SRMOS_OUTPUT_DIR = tmp_path / "benchmark"
    settings.SRMOS_DATA_DIR = embedded_datasets
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # staging folders land here: count them
    (tmp_path / "tmp").mkdir()
    yield
    cache.clear()


@pytest.fixture
def researcher():
    user = User.objects.create_user("carol", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="add_method"))
    client = Client()
    client.force_login(user)
    return client


def encoded(pixels, fmt="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def set5_outputs(embedded_datasets, fmt="PNG"):
    """Honest x4 outputs (bicubic) of the embedded Set5, as uploaded files."""
    files = []
    for name in IMAGES:
        lr = read_image(Path(embedded_datasets) / "Set5" / "image_SRF_4" / f"{name}_SRF_4_LR.png")
        files.append(SimpleUploadedFile(f"{name}_x4_SR.{fmt.lower()}", encoded(imresize(lr, 4), fmt)))
    return files


def png_claiming(width, height, idat=b""):
    """A PNG whose header claims width x height pixels, with (almost) no data behind it."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def staged(tmp_path):
    """Upload staging folders and raw temporary files left behind."""
    return [p.name for p in (tmp_path / "tmp").iterdir() if p.name.startswith("srmos-upload-") or p.suffix == ".upload"]


def stored():
    """Rows an upload adds; a refused upload adds none (no failed BenchmarkRun either)."""
    return (Method.objects.count(), Output.objects.count(), BenchmarkRun.objects.count(), Metric.objects.count())


def post(client, files, name="my-gan", dataset="Set5"):
    return client.post(URL, {"name": name, "dataset": dataset, "files": files})


@pytest.mark.slow
def test_a_researcher_uploads_outputs_and_they_are_measured(researcher, embedded_datasets, tmp_path):
    response = post(researcher, set5_outputs(embedded_datasets, "JPEG"))
    assert response.status_code == 302, response.content.decode()[-2000:]
    method = Method.objects.get(name="my-gan")
    assert method.kind == Method.Kind.EXTERNAL and method.owner.username == "carol"  # the uploader owns it
    assert method.outputs.count() == 5 and Metric.objects.filter(output__method=method).count() == 5
    for output in method.outputs.all():  # stored as bare content-addressed PNGs under MEDIA_ROOT
        path = Path(tmp_path / "media" / output.file)
        assert path.read_bytes().startswith(b"\x89PNG") and output.file == f"outputs/{output.sha256}.png"
    assert staged(tmp_path) == []  # the staging folder is gone


@pytest.mark.parametrize(
    "make_files, message",
    [
        (
            lambda f: [SimpleUploadedFile("img_001.png", b"<html><script>alert(1)</script></html>")] + f[1:],
            "not a PNG, JPEG or WebP",
        ),
        (lambda f: [SimpleUploadedFile("img_001.png", b"GIF89a" + b"\x00" * 64)] + f[1:], "not a PNG, JPEG or WebP"),
        (lambda f: [SimpleUploadedFile("img_001.png", png_claiming(60_000, 60_000))] + f[1:], "img_001: refused as a"),
        (lambda f: [SimpleUploadedFile("img_001.png", f[0].read()[:300])] + f[1:], "img_001"),  # truncated
        (lambda f: [SimpleUploadedFile("img_001.png", b"")] + f[1:], "empty"),
        (lambda f: f[:4], "no file for img_005"),
        (lambda f: f + [SimpleUploadedFile("../../etc/img_001.png", f[0].read())], "several files for img_001"),
        (lambda f: f + [SimpleUploadedFile("../x/img_001_x4_SR.png", f[0].read())], "same name"),
        (lambda f: [SimpleUploadedFile("img 001;rm -rf.png", f[0].read())] + f[1:], "name files like"),
        (lambda f: [SimpleUploadedFile("img_001.png", encoded(np.zeros((8, 8, 3), np.uint8)))] + f[1:], "img_001"),
        (lambda f: [], "choose the image files"),
    ],
    ids=[
        "html",
        "gif",
        "bomb",
        "truncated",
        "empty",
        "missing",
        "traversal",
        "duplicate",
        "bad-name",
        "wrong-size",
        "none",
    ],
)
def test_unfit_files_are_refused_and_nothing_is_stored(researcher, embedded_datasets, tmp_path, make_files, message):
    files = make_files(set5_outputs(embedded_datasets))
    for upload in files:
        upload.seek(0)
    before = stored()
    response = post(researcher, files)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "srmos-upload-" not in response.content.decode() and ".upload" not in response.content.decode()
    assert stored() == before
    assert staged(tmp_path) == []
    assert not (tmp_path / "media" / "outputs").exists() or not any((tmp_path / "media" / "outputs").iterdir())


def test_size_limit_in_bytes(researcher, embedded_datasets, settings):
    settings.SRMOS_MAX_UPLOAD_BYTES = 1000
    response = post(researcher, set5_outputs(embedded_datasets))
    assert response.status_code == 400 and "at most 1000 bytes per image" in response.content.decode()
    assert stored() == (0, 0, 0, 0)


@pytest.mark.parametrize(
    "name, dataset, message",
    [
        ("<script>alert(1)</script>", "Set5", "use letters, digits"),
        ("x'; DROP TABLE mos_study_method; --", "Set5", "use letters, digits"),
        ("bicubic", "Set5", "built-in"),
        ("mine", "/etc", "Select a valid choice"),
        ("mine", "../../", "Select a valid choice"),
    ],
)
def test_hostile_names_and_datasets(researcher, embedded_datasets, name, dataset, message):
    response = post(researcher, set5_outputs(embedded_datasets), name=name, dataset=dataset)
    assert response.status_code == 400 and message in response.content.decode()
    assert "<script>alert(1)</script>" not in response.content.decode()
    assert stored() == (0, 0, 0, 0)


def test_only_permitted_researchers_may_upload(embedded_datasets):
    assert Client().get(URL).status_code == 302  # to the login page
    someone = Client()
    someone.force_login(User.objects.create_user("dave", password="pw"))
    assert someone.get(URL).status_code == 403
    assert (
        someone.post(URL, {"name": "x", "dataset": "Set5", "files": set5_outputs(embedded_datasets)}).status_code == 403
    )
    assert stored() == (0, 0, 0, 0)


def test_upload_needs_csrf_and_is_rate_limited(embedded_datasets, settings):
    user = User.objects.create_user("erin", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="add_method"))
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    assert post(browser, set5_outputs(embedded_datasets)).status_code == 403
    settings.SRMOS_RATE_LIMITS = {"upload": {"ip": "100/h", "token": "2/h"}}
    client = Client()
    client.force_login(user)
    answers = [post(client, [SimpleUploadedFile("img_001.png", b"junk")]).status_code for _ in range(3)]
    assert answers == [400, 400, 429]
    assert stored() == (0, 0, 0, 0)


def test_a_method_belongs_to_its_uploader(researcher, embedded_datasets):
    """Another researcher uploading under an existing method's name gets 409 and changes nothing (issue 14 #5)."""
    owner = User.objects.create_user("frank", password="pw")
    Method.objects.create(name="franks-gan", kind=Method.Kind.EXTERNAL, owner=owner)
    Method.objects.create(name="imported-by-operator", kind=Method.Kind.EXTERNAL)
    for name in ("franks-gan", "imported-by-operator"):
        before = stored()
        response = post(researcher, set5_outputs(embedded_datasets), name=name)
        assert response.status_code == 409, response.status_code
        assert "belongs to another researcher" in response.content.decode()
        assert stored() == before
    assert Method.objects.get(name="franks-gan").owner == owner


@pytest.mark.parametrize("where", ["staging", "import"])
def test_a_full_disk_during_an_upload_is_a_clear_507(researcher, embedded_datasets, tmp_path, monkeypatch, where):
    import errno

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "staging":
        monkeypatch.setattr("mos_study.views.uploads.write_png", no_space)
    else:
        monkeypatch.setattr("benchmarks.runner.import_outputs", no_space)
    before = stored()
    response = post(researcher, set5_outputs(embedded_datasets))
    assert response.status_code == 507
    assert "no space left" in response.content.decode()
    assert stored() == before
    assert staged(tmp_path) == []
