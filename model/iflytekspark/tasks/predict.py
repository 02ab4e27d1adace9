"""run_mode predict: not in this version (the inference engine replaces this module)."""

from __future__ import annotations

from typing import Any

from ..errors import IFlytekSparkError


class NotInThisVersion(IFlytekSparkError, NotImplementedError):
    """A run_mode this version of the package does not implement yet."""

    exit_code = 3


def run(config: Any, opts: Any) -> int:
    raise NotInThisVersion(
        f"run_mode {config.run_mode} is not yet implemented in this version of iflytekspark; "
        "use train, finetune or eval"
    )
