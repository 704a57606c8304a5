"""Dataset download against a real http.server on 127.0.0.1 serving archives from a temporary folder."""

import io
import os
import tarfile
import zipfile

import pytest

from benchmarks import download as download_module
from benchmarks.download import DATASET_SOURCES, DownloadError, download, resolve_source
from sr_models.datasets import get_dataset
from sr_models.errors import SRMOSError
from tests.benchmarks.archives import make_tar, make_zip, set5_files, sha256_of


def leftovers(data_dir):
    return sorted(p.name for p in data_dir.iterdir()) if data_dir.exists() else []


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_download_verifies_and_unpacks(server, embedded_datasets, tmp_path, kind):
    folder, base = server
    archive = folder / f"set5.{kind}"
    sha = (make_zip if kind == "zip" else make_tar)(archive, embedded_datasets)
    data_dir = tmp_path / "data"

    path = download("Set5", f"{base}/{archive.name}", sha, data_dir, progress=False)

    assert path == data_dir / "Set5"
    assert leftovers(data_dir) == ["Set5"]  # no temporary folder left
    dataset = get_dataset("Set5", data_dir)
    assert [image.name for image in dataset] == [f"img_00{i}" for i in range(1, 6)]
    for original in set5_files(embedded_datasets):
        assert (path / "image_SRF_4" / original.name).read_bytes() == original.read_bytes()


def test_wrong_checksum_leaves_nothing(server, embedded_datasets, tmp_path):
    folder, base = server
    make_zip(folder / "good.zip", embedded_datasets)
    data_dir = tmp_path / "data"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download("Set5", f"{base}/good.zip", "0" * 64, data_dir, progress=False)
    assert leftovers(data_dir) == []


def test_existing_dataset_is_kept_unless_forced(server, embedded_datasets, tmp_path):
    folder, base = server
    sha = make_zip(folder / "again.zip", embedded_datasets)
    data_dir = tmp_path / "data"
    download("Set5", f"{base}/again.zip", sha, data_dir, progress=False)
    marker = data_dir / "Set5" / "marker.txt"
    marker.write_text("old copy")
    download("Set5", f"{base}/again.zip", sha, data_dir, progress=False)
    assert marker.exists()  # not fetched again
    assert download("Set5", data_dir=data_dir) == data_dir / "Set5"  # present: no source or checksum needed
    download("Set5", f"{base}/again.zip", sha, data_dir, progress=False, force=True)
    assert not marker.exists()
    assert leftovers(data_dir) == ["Set5"]
    # A forced download that fails keeps the old copy.
    with pytest.raises(DownloadError):
        download("Set5", f"{base}/again.zip", "1" * 64, data_dir, progress=False, force=True)
    assert len(get_dataset("Set5", data_dir)) == 5


def write_traversal_zip(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Set5/image_SRF_4/img_001_SRF_4_HR.png", b"x")
        zf.writestr("../../escaped.txt", b"gotcha")


def write_absolute_tar(path):
    with tarfile.open(path, "w:gz") as tf:
        data = b"gotcha"
        info = tarfile.TarInfo("/tmp/escaped-absolute.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))


def write_symlink_tar(path):
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("Set5/image_SRF_4/link.png")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)


def write_symlink_zip(path):
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("Set5/evil")
        info.external_attr = 0o120777 << 16  # S_IFLNK
        zf.writestr(info, "../../outside")


@pytest.mark.parametrize(
    "writer,name",
    [
        (write_traversal_zip, "trav.zip"),
        (write_absolute_tar, "abs.tar.gz"),
        (write_symlink_tar, "link.tar.gz"),
        (write_symlink_zip, "link.zip"),
    ],
)
def test_hostile_archives_are_refused(server, tmp_path, writer, name):
    folder, base = server
    writer(folder / name)
    data_dir = tmp_path / "deep" / "data"
    with pytest.raises(DownloadError, match="refused"):
        download("Set5", f"{base}/{name}", sha256_of(folder / name), data_dir, progress=False)
    assert leftovers(data_dir) == []
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "deep" / "escaped.txt").exists()
    assert not os.path.exists("/tmp/escaped-absolute.txt")


def test_archive_bomb_is_refused(server, embedded_datasets, tmp_path, monkeypatch):
    folder, base = server
    sha = make_tar(folder / "big.tar.gz", embedded_datasets)
    monkeypatch.setattr(download_module, "MAX_UNPACKED_BYTES", 100_000)
    with pytest.raises(DownloadError, match="would unpack to .* bytes"):
        download("Set5", f"{base}/big.tar.gz", sha, tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_incomplete_or_corrupt_archive_is_refused(server, embedded_datasets, tmp_path):
    folder, base = server
    with zipfile.ZipFile(folder / "short.zip", "w") as zf:
        for file in set5_files(embedded_datasets)[:4]:
            zf.write(file, f"Set5/image_SRF_4/{file.name}")
    with pytest.raises(SRMOSError, match="incomplete"):
        download("Set5", f"{base}/short.zip", sha256_of(folder / "short.zip"), tmp_path, progress=False)
    with zipfile.ZipFile(folder / "corrupt.zip", "w") as zf:
        zf.writestr("mine/a.png", b"not a png")
    with pytest.raises(SRMOSError, match="a.png"):
        download("mine", f"{base}/corrupt.zip", sha256_of(folder / "corrupt.zip"), tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_archive_without_images_is_refused(server, tmp_path):
    folder, base = server
    with zipfile.ZipFile(folder / "empty.zip", "w") as zf:
        zf.writestr("Set5/readme.txt", b"no images here")
    data_dir = tmp_path / "data"
    with pytest.raises(SRMOSError, match="holds no images"):
        download("Set5", f"{base}/empty.zip", sha256_of(folder / "empty.zip"), data_dir, progress=False)
    assert leftovers(data_dir) == []


def test_unreachable_url_and_not_an_archive(server, tmp_path):
    folder, base = server
    (folder / "plain.txt").write_text("not an archive")
    with pytest.raises(DownloadError, match="could not download"):
        download("Set5", f"{base}/missing.zip", "0" * 64, tmp_path, progress=False)
    with pytest.raises(DownloadError, match="neither a zip nor a tar"):
        download("Set5", f"{base}/plain.txt", sha256_of(folder / "plain.txt"), tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_unverified_needs_consent_and_prints_checksum(server, embedded_datasets, tmp_path, capsys):
    folder, base = server
    sha = make_tar(folder / "mine.tar.gz", embedded_datasets, top="mine")
    with pytest.raises(DownloadError, match="--allow-unverified"):
        download("mine", f"{base}/mine.tar.gz", None, tmp_path, progress=False)
    assert leftovers(tmp_path) == []
    download("mine", f"{base}/mine.tar.gz", None, tmp_path, progress=False, allow_unverified=True)
    assert sha in capsys.readouterr().out
    assert len(get_dataset("mine", tmp_path)) == 5


def test_source_resolution_order(monkeypatch):
    assert resolve_source("Set14").url == DATASET_SOURCES["Set14"].url
    monkeypatch.setenv("SRMOS_DATASET_URL_SET14", "http://mirror.example/set14.zip")
    monkeypatch.setenv("SRMOS_DATASET_SHA256_SET14", "A" * 64)
    assert resolve_source("Set14") == resolve_source("Set14", None, None)
    assert resolve_source("Set14").url == "http://mirror.example/set14.zip"
    assert resolve_source("Set14").sha256 == "a" * 64
    assert resolve_source("Set14", url="http://x/y.zip", sha256="b" * 64).url == "http://x/y.zip"
    with pytest.raises(DownloadError, match="64 hexadecimal"):
        resolve_source("Set14", sha256="abc")
    with pytest.raises(DownloadError, match="no download source"):
        resolve_source("Nowhere")


def test_bad_dataset_name_is_refused(tmp_path):
    with pytest.raises(DownloadError, match="plain folder name"):
        download("../evil", "http://127.0.0.1:9/x.zip", "0" * 64, tmp_path, progress=False)
