"""Atomic writes: the target holds the old file or the whole new one, and no temporary file is left behind."""

import os

import pytest

from sr_models import fileio
from sr_models.fileio import atomic_link, atomic_write, atomic_write_many


def test_writes_bytes_text_or_through_a_writer(tmp_path):
    assert atomic_write(tmp_path / "a" / "b.bin", b"\x00\x01") == tmp_path / "a" / "b.bin"
    atomic_write(tmp_path / "t.txt", "grüße")
    atomic_write(tmp_path / "w.bin", lambda file: file.write(b"written"))
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "grüße"
    assert (tmp_path / "w.bin").read_bytes() == b"written"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b.bin", "t.txt", "w.bin"]


def test_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    order = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(fileio.os, "fsync", lambda fd: (order.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(fileio.os, "replace", lambda a, b: (order.append("replace"), real_replace(a, b)))
    atomic_write(tmp_path / "x", b"x")
    assert order == ["fsync", "replace"]


@pytest.mark.parametrize("where", ["writer", "check", "replace"])
def test_a_failure_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, where):
    target = tmp_path / "keep.txt"
    target.write_text("old")

    def boom(*args):
        raise RuntimeError("disk full")

    if where == "replace":
        monkeypatch.setattr(fileio.os, "replace", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, boom if where == "writer" else "new", check=boom if where == "check" else None)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_many_files_are_all_written_before_the_first_rename(tmp_path, monkeypatch):
    first, second = tmp_path / "first.csv", tmp_path / "sub" / "second.md"
    atomic_write_many({first: "1", second: b"2"})
    assert (first.read_text(), second.read_text()) == ("1", "2")

    def writer_fails(file):
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".first.csv.")), "staged first"
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_many({first: "new", second: writer_fails})
    assert (first.read_text(), second.read_text()) == ("1", "2")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["first.csv", "second.md", "sub"]


def test_link_puts_the_same_file_in_place_or_raises_oserror(tmp_path, monkeypatch):
    source = tmp_path / "source.png"
    source.write_bytes(b"png")
    assert atomic_link(source, tmp_path / "media" / "out.png") == tmp_path / "media" / "out.png"
    assert os.path.samefile(source, tmp_path / "media" / "out.png")

    def refused(temporary):
        raise ValueError("wrong bytes")

    with pytest.raises(ValueError):
        atomic_link(source, tmp_path / "media" / "bad.png", check=refused)

    def cross_device(source, destination):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(fileio.os, "link", cross_device)
    with pytest.raises(OSError):
        atomic_link(source, tmp_path / "media" / "other.png")
    assert [p.name for p in (tmp_path / "media").iterdir()] == ["out.png"]


def test_written_files_get_the_mode_open_would_give_them(tmp_path):
    path = atomic_write(tmp_path / "table.csv", "a,b\n")
    assert path.stat().st_mode & 0o777 == 0o666 & ~fileio.UMASK
    assert os.access(path, os.R_OK)
