"""Writing files so that a reader sees the old content or the new, never a half-written file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path, write, *, mode: str = "w") -> Path:
    """Call `write(stream)` on a temporary file beside `path`, fsync it, then rename it over `path`;
    on any failure the temporary file is removed and `path` is untouched."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, mode) as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return target


def write_text_atomic(path, text: str) -> Path:
    """Write `text` to `path` atomically (see `write_atomic`)."""
    return write_atomic(path, lambda stream: stream.write(text))
