"""Job input files the planner reads on this machine: the tokenizer and the eval dataset's columns.

The tokenizer (``job.tokenizer``: a folder with ``*.model`` and ``*.vocab``, or the ``*.model`` file) is
loaded with the model package's own reader, so what ``plan`` accepts the node accepts, and its piece
count is checked against the model's ``vocab_size``: ids of a larger tokenizer would index past the
embedding. A path under a cluster shared path that this machine does not see is not checked (a warning
says so); any other missing path is refused.
"""

from __future__ import annotations

import json
import posixpath
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from orchestrator.errors import Problem

FIELD = "job.tokenizer"
FIX = "give the tokenizer folder (tokenizer.model + tokenizer.vocab) or its .model file: job.tokenizer in the inventory or --set job.tokenizer=PATH"  # fmt: skip


@dataclass(frozen=True)
class TokenizerFiles:
    """A tokenizer as read here: its files and its number of pieces. ``companion``: the ``.vocab`` that
    travels beside a tokenizer given as its ``.model`` file."""

    path: str
    model_file: str
    vocab_file: Optional[str]
    pieces: int
    companion: Optional[str] = None


def is_shared(path: str, shared_paths: Sequence[str]) -> bool:
    norm = posixpath.normpath(path)
    return any(norm == s.rstrip("/") or norm.startswith(s.rstrip("/") + "/") for s in shared_paths)


def check_tokenizer(path: Optional[str], model: Any, shared_paths: Sequence[str],
                    problems: list[Problem], warnings: list[str]) -> Optional[TokenizerFiles]:  # fmt: skip
    """The tokenizer at ``path`` (None when unset or not readable here); what is wrong goes to ``problems``."""
    if not path:
        return None
    if not Path(path).expanduser().exists():
        if is_shared(path, shared_paths):
            warnings.append(
                f"job.tokenizer {path} (shared storage) is not visible here: its vocabulary is not checked"
            )
            return None
        problems.append(Problem(path, FIELD, "no such file or folder", FIX))
        return None
    from iflytekspark.tokenizer import Tokenizer, TokenizerError  # sentencepiece only, no MindSpore

    try:
        tok = Tokenizer(Path(path).expanduser())
    except TokenizerError as exc:
        problems.append(Problem(path, FIELD, str(exc).split(": ", 1)[-1], FIX))
        return None
    vocab = int(model.vocab_size)
    if tok.vocab_size > vocab:
        problems.append(Problem(str(tok.model_file), FIELD, f"{tok.vocab_size} pieces, more than the vocab_size {vocab} "
                                f"of model {model.name}: ids from {vocab} up would index past its embedding",
                                f"use the model's own tokenizer, or a model with vocab_size >= {tok.vocab_size}"))  # fmt: skip
        return None
    vocab_file = str(tok.vocab_file) if tok.vocab_file is not None else None
    companion = vocab_file if Path(path).expanduser().is_file() else None
    return TokenizerFiles(path, str(tok.model_file), vocab_file, tok.vocab_size, companion)


def mindrecord_columns(path: Optional[str]) -> Optional[tuple[str, ...]]:
    """The column names in a MindRecord file's header (8-byte length, then JSON); None if unreadable."""
    if not path:
        return None
    try:
        with open(Path(path).expanduser(), "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(min(size, 1 << 20)).decode("utf-8"))
        return tuple(sorted(name for part in header.get("schema", []) for name in part.get("schema", {})))
    except (OSError, ValueError, struct.error, AttributeError, TypeError):
        return None
