"""Exceptions of the iflytekspark package (it runs on nodes and must not import the orchestrator)."""

from __future__ import annotations

from typing import Sequence


class IFlytekSparkError(Exception):
    """Root of every error the model package raises on purpose."""


class ConfigError(IFlytekSparkError, ValueError):
    """A model configuration value is invalid; the message names the field and the fix."""


class CheckpointError(IFlytekSparkError, ValueError):
    """A checkpoint does not fit the model: lists every missing key and every shape mismatch."""

    def __init__(self, source: str, missing: Sequence[str] = (), mismatched: Sequence[str] = ()):
        self.source = source
        self.missing = tuple(missing)
        self.mismatched = tuple(mismatched)
        lines = [f"checkpoint {source} does not fit the model:"]
        lines += [f"  - missing key: {k}" for k in self.missing]
        lines += [f"  - shape mismatch: {m}" for m in self.mismatched]
        fix = "fix: load a checkpoint made for this model size, or pass strict=False to load what matches"
        super().__init__("\n".join(lines + [fix]))
