"""Atomic file writes: a reader sees the old file or the whole new one, never a part, even after a crash.

``atomic_write(path, data_or_writer)`` writes to a temporary file in the target's folder (same file system, so the
rename is atomic), flushes and fsyncs it, then ``os.replace``-s it into place; on any failure the temporary file is
removed and the target is left as it was. ``atomic_write_many`` does the same for several files, all complete on
disk before the first rename; ``atomic_link`` puts a hard link in place the same way. Every srmos file that others
read (checkpoints, PNG outputs, tables, manifests, published outputs, exports) is written through here.
"""

import os
import secrets
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()  # read once: os.umask can only be read by setting it, which is not thread-safe


def _temporary(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    # mkstemp makes the file 0600; the final file gets the mode open() would give it (0666 less the umask), so a
    # web server or another worker can read outputs and tables.
    os.fchmod(fd, 0o666 & ~UMASK)
    return fd, Path(temporary)


def _fill(fd, data_or_writer):
    """Write ``bytes``/``str`` (UTF-8), or call ``writer(binary_file)``, into ``fd``; flush and fsync it."""
    with os.fdopen(fd, "wb") as file:
        if callable(data_or_writer):
            data_or_writer(file)
        else:
            file.write(data_or_writer.encode() if isinstance(data_or_writer, str) else data_or_writer)
        file.flush()
        os.fsync(file.fileno())


@contextmanager
def _removed_on_failure(temporary):
    """Remove ``temporary`` if the block raises (anything, ``KeyboardInterrupt`` too), then re-raise."""
    try:
        yield
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _put_in_place(temporary, path, check):
    """``check(temporary)`` when given (it may raise to refuse the file), then rename ``temporary`` to ``path``."""
    if check is not None:
        check(temporary)
    os.replace(temporary, path)


def atomic_write(path, data_or_writer, *, check=None):
    """Write ``path`` atomically; returns it as a ``Path``.

    ``data_or_writer``: bytes, a str (written as UTF-8), or a callable given the open binary temporary file.
    ``check(temporary_path)``, when given, runs on the complete temporary file before the rename and may raise to
    refuse it (the target is then left untouched).
    """
    path = Path(path)
    fd, temporary = _temporary(path)
    with _removed_on_failure(temporary):
        _fill(fd, data_or_writer)
        _put_in_place(temporary, path, check)
    return path


def atomic_write_many(contents):
    """Write ``{path: bytes, str or writer}`` atomically, every file complete on disk before the first rename, so
    that a failure while writing leaves all the targets as they were. Returns the paths."""
    staged = []
    try:
        for path, data in contents.items():
            path = Path(path)
            fd, temporary = _temporary(path)
            staged.append((temporary, path))
            _fill(fd, data)
        for temporary, path in staged:
            os.replace(temporary, path)
    finally:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
    return [path for _, path in staged]


def atomic_link(source, path, *, check=None):
    """Put a hard link to ``source`` at ``path`` atomically (link under a temporary name, ``check`` it, rename):
    no bytes are copied, so ``source`` must never be rewritten in place. Raises ``OSError`` where no link can be
    made (another file system, say): the caller may then copy with ``atomic_write``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    os.link(source, temporary)
    with _removed_on_failure(temporary):
        _put_in_place(temporary, path, check)
    return path
