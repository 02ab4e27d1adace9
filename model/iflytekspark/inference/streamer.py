"""TextStreamer: the new text of every row as tokens arrive (docs/model.md §5).

Each row's answer is decoded whole and the part not yet released is handed out, except trailing
U+FFFD: byte-fallback pieces that do not form a character yet are held until they do. Nothing is
released for a row after its ``<end>``. The released pieces of a row add up to its decoded answer.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

import numpy as np

__all__ = ["TextStreamer"]

_INCOMPLETE = "\ufffd"  # what SentencePiece decodes an unfinished UTF-8 byte sequence to

# sink(row, text): called with each non-empty piece of text
Sink = Callable[[int, str], None]


class TextStreamer:
    """Use ``put`` as generate's ``on_step``; each call returns the new text per row ("" for none)."""

    def __init__(self, tokenizer: Any, batch: int, eos_id: int = 5, sink: Optional[Sink] = None):
        self.tokenizer, self.eos_id, self.sink = tokenizer, eos_id, sink
        self.ids: List[List[int]] = [[] for _ in range(batch)]
        self.released = [""] * batch
        self.done = [False] * batch

    def put(self, tokens: np.ndarray, active: np.ndarray) -> List[str]:
        """Take one token per row (rows where ``active`` is False are skipped); return new text per row."""
        for row, token in enumerate(tokens):
            if not active[row] or self.done[row]:
                continue
            if int(token) == self.eos_id:
                self.done[row] = True
            else:
                self.ids[row].append(int(token))
        return [self._release(row, final=self.done[row]) for row in range(len(self.ids))]

    def end(self) -> List[str]:
        """Release everything still held (an unfinished byte sequence comes out as U+FFFD)."""
        self.done = [True] * len(self.ids)
        return [self._release(row, final=True) for row in range(len(self.ids))]

    def text(self, row: int) -> str:
        """All text released for ``row`` so far."""
        return self.released[row]

    def _release(self, row: int, final: bool) -> str:
        decoded = self.tokenizer.decode(self.ids[row])
        if not final:
            decoded = decoded.rstrip(_INCOMPLETE)
        done = self.released[row]
        new = decoded[len(done) :] if decoded.startswith(done) and len(decoded) > len(done) else ""
        self.released[row] = done + new
        if new and self.sink is not None:
            self.sink(row, new)
        return new
