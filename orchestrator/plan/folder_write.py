"""Write a folder of many small generated files at once, and put it in place of an earlier one.

The files go into a new sibling folder first (``.<name>.new-<pid>-<random>``), each created with
one ``open`` relative to its already-open directory, written once and given its mode on the open
descriptor. Then the new folder takes the old one's place in one step where Linux offers it
(``renameat2`` with ``RENAME_EXCHANGE``), else by two renames: a reader sees the old folder or the
new one, never half of each. The new folder keeps the old one's permissions (a private job folder
stays private). A folder that cannot be swapped (a mount point, the working folder, one whose
parent we may not write) is emptied and filled in place.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
from pathlib import Path
from typing import Mapping

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _write_dir(path: Path, entries: list[tuple[str, str, int]]) -> None:
    """Create the files ``entries`` ((name, text, mode)) in the existing folder ``path``."""
    dir_fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        for name, text, mode in entries:
            fd = os.open(name, _FLAGS, mode, dir_fd=dir_fd)
            try:
                os.write(fd, text.encode("utf-8"))  # regular files: one write takes it all
                os.fchmod(fd, mode)  # exactly ``mode``, whatever the umask
            finally:
                os.close(fd)
    finally:
        os.close(dir_fd)


def _write_tree(root: Path, files: Mapping[str, tuple[str, int]]) -> None:
    """Create every ``{relative path: (text, mode)}`` under the empty folder ``root``, folder by
    folder (threads were tried: creating files waits on the file system's own locks, they won nothing)."""
    by_dir: dict[str, list[tuple[str, str, int]]] = {}
    for rel in sorted(files):
        folder, _, name = rel.rpartition("/")
        by_dir.setdefault(folder, []).append((name, *files[rel]))
    for folder, entries in by_dir.items():
        path = root / folder if folder else root
        path.mkdir(parents=True, exist_ok=True)
        _write_dir(path, entries)


def _clear(out: Path) -> None:
    """Empty ``out`` for an in-place write."""
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def replace_folder(out: Path, files: Mapping[str, tuple[str, int]]) -> list[Path]:
    """Make ``out`` hold exactly ``files`` (``{relative path: (text, mode)}``); the paths, sorted."""
    given, out = Path(out), Path(os.path.abspath(out))
    written = [given / rel for rel in sorted(files)]
    out.parent.mkdir(parents=True, exist_ok=True)
    new = out.parent / f".{out.name}.new-{os.getpid()}-{secrets.token_hex(4)}"
    in_place = out.is_dir() and out.samefile(os.getcwd())  # swapped away, it would be left deleted
    if not in_place:
        try:
            new.mkdir()
        except PermissionError:  # no say over the folder around it
            in_place = True
    if in_place:
        if out.is_dir():
            _clear(out)
        _write_tree(out, files)
        return written
    try:
        if out.is_dir():
            new.chmod(out.stat().st_mode & 0o7777)
        _write_tree(new, files)
        _swap(new, out)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    return written


def _exchange(a: Path, b: Path) -> bool:
    """Swap the folders ``a`` and ``b`` in one step (Linux renameat2); False where that is not offered."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _swap(new: Path, out: Path) -> None:
    """Put ``new`` where ``out`` is (``out`` may not exist yet); ``new`` is gone afterwards."""
    if not out.exists():
        new.rename(out)
        return
    if out.is_dir() and not out.is_symlink() and _exchange(new, out):
        shutil.rmtree(new, ignore_errors=True)  # now the earlier folder
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        out.rename(old)
    except OSError:  # a mount point or a folder we may not rename: fill it in place
        _clear(out)
        for child in sorted(new.iterdir()):
            child.rename(out / child.name)
        new.rmdir()
        return
    try:
        new.rename(out)
    except OSError:  # another writer put its folder there meanwhile: theirs stays, ours is dropped
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
