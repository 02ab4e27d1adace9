"""Where the MindRecord goes: checks of the output path, and writing it whole or not at all.

A MindRecord file keeps its own name in its header and in its ``.db`` index, so it cannot be written under
a temporary name and renamed (MindSpore then refuses to read it). It is written with its final name into a
hidden temporary folder, and the two files are moved into place only when complete (the ``.db`` first, the
``.mindrecord`` last); a failed or interrupted run removes the folder, and an existing output stays until
the new one replaces it. MindFormers finds training files by walking the dataset folder recursively, so the
temporary folder goes beside the output's folder, not into it (into it only when that is impossible).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List


def index_of(path: Path) -> Path:
    """The ``.db`` index MindSpore writes next to ``path``."""
    return path.with_name(path.name + ".db")


def output_problems(path: Path) -> List[str]:
    """What keeps ``--output_filename path`` from being written (checked before any work)."""
    problems = []
    for target in (path, index_of(path)):
        if target.is_dir() and any(target.iterdir()):
            problems.append(
                f"--output_filename {path}: {target} is a folder that is not empty; "
                "give a file name ending in .mindrecord (the folder is left alone)"
            )
        elif target.exists() and not target.is_file() and not target.is_dir():
            problems.append(f"--output_filename {path}: {target} exists and is not a regular file")
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
    if parent is not None and not parent.is_dir():
        problems.append(f"--output_filename {path}: {parent} is a file, not a folder")
    elif parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        problems.append(f"--output_filename {path}: cannot write in {parent} (permission denied)")
    return problems


def staging_folder(path: Path) -> Path:
    """Where the temporary folder goes: beside the output's folder when that is on the same file system
    and writable (a scan of the output's folder cannot see it there), else in the output's folder."""
    folder = path.parent.resolve()
    above = folder.parent
    try:
        usable = (
            above != folder
            and os.access(above, os.W_OK | os.X_OK)
            and above.stat().st_dev == folder.stat().st_dev
        )
    except OSError:
        usable = False
    return above if usable else folder


def _clear(target: Path) -> None:
    """Make room for a new file at ``target``: an empty folder there is removed."""
    if target.is_dir() and not target.is_symlink():
        target.rmdir()


@contextmanager
def staged(path: Path) -> Iterator[Path]:
    """Yield a path with ``path``'s name in a new temporary folder; on success move the file and its index
    to ``path`` (replacing what is there), on any failure or interruption remove the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=str(staging_folder(path))))
    try:
        staged_file = temp / path.name
        yield staged_file
        for done, final in ((index_of(staged_file), index_of(path)), (staged_file, path)):
            _clear(final)
            os.replace(done, final)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
