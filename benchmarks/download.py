"""Fetch a test set archive, verify its SHA-256 and unpack it safely into the data directory.

Every step happens in a temporary folder inside the data directory; only a verified, safely unpacked and readable
dataset is renamed into place, so a wrong checksum or a hostile archive leaves nothing behind.
"""

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

from sr_models.datasets import get_dataset, resolve_data_dir
from sr_models.errors import SRMOSError

CHUNK = 1 << 20
TIMEOUT_S = 60
MAX_UNPACKED_BYTES = 20 << 30  # BSD100 unpacks to well under 1 GB; refuses archive bombs


class DownloadError(SRMOSError):
    """A dataset download that could not be fetched, verified or unpacked."""


@dataclass(frozen=True)
class DatasetSource:
    """Where a test set's archive lives.

    ``sha256`` is the archive's checksum (None where no pinned value is known: pass one, or allow unverified).
    ``root`` is the folder inside the archive that becomes ``<data_dir>/<name>``; None finds the one folder that
    holds ``image_SRF_<scale>`` (the SelfExSR release layout).
    """

    url: str
    sha256: str | None = None
    root: str | None = None


# The SelfExSR release (Huang et al., CVPR 2015) that made the image_SRF_4 layout common. Its publisher gives no
# checksums and we could not fetch the archives to pin them here, so the defaults carry none (see docs/benchmarks.md).
DATASET_SOURCES = {
    "Set5": DatasetSource("https://uofi.box.com/shared/static/kfahv87nfe8ax910l85dksyl2q212voc.zip"),
    "Set14": DatasetSource("https://uofi.box.com/shared/static/igsnfieh4lz68l926l8xbklwsnnk8we9.zip"),
    "BSD100": DatasetSource("https://uofi.box.com/shared/static/qgctsplb8txrksm9to9x01zfa4m61ngq.zip"),
}


def env_key(name):
    return "".join(c if c.isalnum() else "_" for c in name.upper())


def resolve_source(name, url=None, sha256=None, root=None):
    """Arguments first, then ``SRMOS_DATASET_URL_<NAME>`` / ``SRMOS_DATASET_SHA256_<NAME>``, then DATASET_SOURCES."""
    known = DATASET_SOURCES.get(name, DatasetSource(url=""))
    key = env_key(name)
    url = url or os.environ.get(f"SRMOS_DATASET_URL_{key}") or known.url
    sha256 = sha256 or os.environ.get(f"SRMOS_DATASET_SHA256_{key}") or known.sha256
    if not url:
        raise DownloadError(
            f"no download source for dataset {name!r}: known sources are {', '.join(DATASET_SOURCES)}; "
            f"pass --url (and --sha256) or set SRMOS_DATASET_URL_{key}"
        )
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise DownloadError(f"--sha256 must be 64 hexadecimal digits, got {sha256!r}")
    return DatasetSource(url=url, sha256=sha256, root=root if root is not None else known.root)


def download(
    name,
    url=None,
    sha256=None,
    data_dir=None,
    *,
    root=None,
    scale=4,
    force=False,
    allow_unverified=False,
    progress=True,
):
    """Download dataset ``name`` into ``<data_dir>/<name>`` and return that path.

    An existing dataset is kept (and returned) unless ``force``; then it is replaced only after the new copy is
    verified and unpacked.
    """
    if not name or os.sep in name or name in (".", "..") or (os.altsep and os.altsep in name):
        raise DownloadError(f"dataset name {name!r} must be a plain folder name")
    data_dir = resolve_data_dir(data_dir)
    target = data_dir / name
    if target.exists() and not force:
        return target
    source = resolve_source(name, url, sha256, root)
    if source.sha256 is None and not allow_unverified:
        raise DownloadError(
            f"no SHA-256 is known for {name} ({source.url}): pass --sha256 (or set "
            f"SRMOS_DATASET_SHA256_{env_key(name)}) so the archive can be verified, or pass --allow-unverified "
            f"to accept it and have its checksum printed"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".download-{name}-", dir=data_dir))
    try:
        archive = work / "archive"
        digest = fetch(source.url, archive, progress=progress)
        if source.sha256 is not None and digest != source.sha256:
            raise DownloadError(
                f"checksum mismatch for {source.url}: expected sha256 {source.sha256}, got {digest}; "
                f"nothing was unpacked"
            )
        if source.sha256 is None:
            print(f"warning: {name} archive accepted unverified; its sha256 is {digest}")
        unpacked = work / "unpacked"
        unpack_archive(archive, unpacked)
        dataset_root = find_dataset_root(unpacked, source.root, scale)
        get_dataset(str(dataset_root), name=name, scale=scale).verify()  # complete and readable, before it goes in
        if target.exists():  # move the old copy aside first: the swap itself is two renames
            os.rename(target, work / "previous")
        os.rename(dataset_root, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def fetch(url, destination, *, progress=True):
    """Stream ``url`` to ``destination``; return the SHA-256 of the bytes."""
    from tqdm import tqdm

    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(destination, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc="download", disable=not progress) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DownloadError(f"could not download {url}: {exc}") from exc
    return digest.hexdigest()


def unpack_archive(archive, destination):
    """Unpack a zip or tar(.gz/.bz2/.xz) archive holding only plain files and folders below ``destination``."""
    destination = Path(destination)
    destination.mkdir(parents=True)
    if zipfile.is_zipfile(archive):
        unpack_zip(archive, destination)
    elif tarfile.is_tarfile(archive):
        unpack_tar(archive, destination)
    else:
        raise DownloadError("the downloaded file is neither a zip nor a tar archive")


def safe_member_path(destination, member_name):
    """The path ``member_name`` unpacks to, refusing absolute paths and any ``..`` that would climb out."""
    name = member_name.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (parts and ":" in parts[0]) or ".." in parts:
        raise DownloadError(f"archive member {member_name!r} points outside the archive folder; refused")
    path = destination.joinpath(*[p for p in parts if p not in ("", ".")])
    if not path.resolve().is_relative_to(destination.resolve()):
        raise DownloadError(f"archive member {member_name!r} points outside the archive folder; refused")
    return path


def check_total_size(sizes):
    total = sum(sizes)
    if total > MAX_UNPACKED_BYTES:
        raise DownloadError(f"the archive would unpack to {total} bytes, more than {MAX_UNPACKED_BYTES}; refused")


@dataclass(frozen=True)
class Member:
    """One entry of an archive, as zip and tar both describe it."""

    name: str
    size: int
    is_dir: bool
    plain: bool  # a regular file or a folder (not a link, device or FIFO)
    open: object  # () -> a binary file of the entry's bytes


def unpack_members(members, destination):
    """Check every member (total size, path inside ``destination``, plain file or folder) before writing any."""
    check_total_size(member.size for member in members)
    for member in members:
        safe_member_path(destination, member.name)
        if not member.plain:
            raise DownloadError(f"archive member {member.name!r} is a link or special file; refused")
    for member in members:
        path = safe_member_path(destination, member.name)
        if member.is_dir:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        with member.open() as src, open(path, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)


def unpack_zip(archive, destination):
    with zipfile.ZipFile(archive) as zf:
        members = []
        for info in zf.infolist():
            file_type = stat.S_IFMT(info.external_attr >> 16)  # 0 where the zip was made without Unix modes
            plain = file_type in (0, stat.S_IFREG, stat.S_IFDIR)
            members.append(Member(info.filename, info.file_size, info.is_dir(), plain, partial(zf.open, info)))
        unpack_members(members, destination)


def unpack_tar(archive, destination):
    try:
        with tarfile.open(archive) as tf:
            members = [
                Member(m.name, m.size, m.isdir(), m.isfile() or m.isdir(), partial(tf.extractfile, m))
                for m in tf.getmembers()
            ]
            unpack_members(members, destination)
    except tarfile.TarError as exc:
        raise DownloadError(f"the downloaded tar archive is damaged: {exc}") from exc


def find_dataset_root(unpacked, root, scale):
    """The unpacked folder to install: ``root`` if given, else the one folder holding ``image_SRF_<scale>``."""
    if root is not None:
        path = safe_member_path(unpacked, root)
        if not path.is_dir():
            raise DownloadError(f"the archive has no folder {root!r}")
        return path
    layout = f"image_SRF_{scale}"
    found = sorted(p.parent for p in unpacked.rglob(layout) if p.is_dir())
    if len(found) == 1:
        return found[0]
    if found:
        raise DownloadError(
            f"the archive holds several {layout} folders ({', '.join(map(str, found))}); say which with --root"
        )
    top = [p for p in unpacked.iterdir()]
    if len(top) == 1 and top[0].is_dir():  # a plain folder of HR images
        return top[0]
    return unpacked
