"""Test-set archives for the download tests (fixtures are in conftest.py)."""

import hashlib
import tarfile
import zipfile


def set5_files(embedded_datasets):
    folder = embedded_datasets / "Set5" / "image_SRF_4"
    return sorted(folder.iterdir())


def make_zip(path, embedded_datasets, top="Set5"):
    with zipfile.ZipFile(path, "w") as zf:
        for file in set5_files(embedded_datasets):
            zf.write(file, f"{top}/image_SRF_4/{file.name}")
    return sha256_of(path)


def make_tar(path, embedded_datasets, top="Set5"):
    with tarfile.open(path, "w:gz") as tf:
        for file in set5_files(embedded_datasets):
            tf.add(file, f"{top}/image_SRF_4/{file.name}")
    return sha256_of(path)


def sha256_of(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()
