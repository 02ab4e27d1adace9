"""run_mode export: not in this version (the inference engine replaces this module)."""

from __future__ import annotations

from .predict import run

__all__ = ["run"]
