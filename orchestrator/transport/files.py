"""Atomic local file writes: temp name in the same folder, fsync, rename (shared by both transports)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable


def temp_name(path: str) -> str:
    """A sibling temp name for ``path`` (``<path>.tmp-<random>``), renamed over it when complete."""
    return f"{path}.tmp-{secrets.token_hex(6)}"


def write_atomic(path: Path, fill: Callable[[BinaryIO], None], mode: int = 0o644) -> None:
    """Create ``path`` (and its parents) atomically: ``fill`` writes a temp file, then fsync + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(temp_name(str(path)))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
