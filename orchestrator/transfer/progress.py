"""A rich progress bar per route (bytes, rate, ETA) on stderr, or nothing."""

from __future__ import annotations

import threading
from typing import Callable, Optional


class ProgressBars:
    """``bar(label, total)`` returns a callback taking byte counts; a no-op when disabled."""

    def __init__(self, enabled: bool):
        self._progress = None
        self._lock = threading.Lock()
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )

    def __enter__(self) -> ProgressBars:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()

    def bar(self, label: str, total: int) -> Callable[[int], None]:
        if self._progress is None:
            return lambda n: None
        with self._lock:
            task = self._progress.add_task(label, total=total)
        progress: Optional[object] = self._progress
        return lambda n: progress.advance(task, n)  # type: ignore[union-attr]
