"""The one place the CLI makes its rich Consoles.

On a terminal: rich's own console (fitted to the window, colours, live redraws; a long value may be
cut with "…" to fit). Anywhere else (a pipe, ``| tee``, a CI log, a file, click's CliRunner): a console
as wide as what it prints, so every table shows each value whole and no path is cut at 80 columns.
Tables never pad to the console's width, so the output is only as wide as its longest row.
"""

from __future__ import annotations

import sys
from typing import IO, Any, Optional

from rich.console import Console

UNBOUNDED = 1_000_000  # columns: wider than any row printed; tables and text are not padded to it


def is_terminal(stream: Any) -> bool:
    """True when ``stream`` is an interactive terminal (its own ``isatty``, not rich's guess)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def make_console(stderr: bool = False, file: Optional[IO[str]] = None, **options: Any) -> Console:
    """A Console on ``file`` (default stdout, or stderr): window-wide on a terminal, unbounded elsewhere.

    ``options`` go to rich's Console as they are (e.g. ``color_system=None`` for deterministic text).
    """
    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    if not is_terminal(stream):
        options.setdefault("width", UNBOUNDED)
    return Console(file=file, stderr=stderr, **options)


def prints_whole(console: Console) -> bool:
    """True when ``console`` has room for whole values (made here for a pipe or file, not a window)."""
    return console.width >= UNBOUNDED
