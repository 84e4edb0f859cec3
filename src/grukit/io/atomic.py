"""Writing files and directories so that a reader sees the old content or the new, never half.

Each is written under a unique staging name beside its target (same directory, so the same file
system), flushed to disk, and renamed over the target with `os.replace`, which is atomic on POSIX
and Windows. On any failure the staging copy is removed and the target is untouched.

Permissions: what a plain ``open(path, "w")`` or ``mkdir`` would give, 0o666 (files) or 0o777
(directories) less the process's umask — not the 0o600 / 0o700 of `tempfile`'s private names.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read from /proc on Linux; elsewhere by setting and restoring it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def staged_file(path) -> Iterator[Path]:
    """Yield a staging path beside `path` for the caller to write (by name); on leaving the block
    the file is fsynced, given mode 0o666 & ~umask, and renamed over `path` (its parent is
    created if missing). An exception inside the block removes the staging file and leaves `path`
    as it was. Nest two blocks to replace two files only if both were written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    staging = Path(name)
    try:
        yield staging
        _fsync(staging)
        os.chmod(staging, 0o666 & ~current_umask())
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


@contextmanager
def staged_directory(path) -> Iterator[Path]:
    """Yield an empty staging directory beside `path` for the caller to fill; on leaving the block
    every file in it is fsynced and given mode 0o666 & ~umask (whatever the writer chose: some,
    as safetensors, write 0o600), the directory 0o777 & ~umask, and it is renamed to `path`.
    An existing `path` is replaced: moved aside first, removed once the new one is in place (the
    caller decides whether replacing is allowed). An exception inside the block removes the
    staging directory and leaves `path` as it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield staging
        umask = current_umask()
        for file in staging.iterdir():  # the caller writes files, not subdirectories
            _fsync(file)
            os.chmod(file, 0o666 & ~umask)
        os.chmod(staging, 0o777 & ~umask)
        if target.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, backup / "previous")
            os.replace(staging, target)
            shutil.rmtree(backup)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_atomic(path, write, *, mode: str = "w") -> Path:
    """Call `write(stream)` on a staging file beside `path` opened with `mode` ("w" or "wb"),
    then put it in place (`staged_file`); returns `path` as a Path."""
    with staged_file(path) as staging, open(staging, mode) as stream:
        write(stream)
    return Path(path)


def write_text_atomic(path, text: str) -> Path:
    """Write `text` to `path` atomically (see `write_atomic`)."""
    return write_atomic(path, lambda stream: stream.write(text))


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
