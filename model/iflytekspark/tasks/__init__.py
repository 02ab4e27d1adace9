"""One module per run_mode; each exposes ``run(config, opts) -> exit code``.

train and finetune share :mod:`.train`; adding a mode is adding a module and a line in ``TASK_MODULES``.
"""

from __future__ import annotations

import importlib
from typing import Any

TASK_MODULES = {
    "train": "train",
    "finetune": "train",
    "eval": "evaluate",
    "predict": "predict",
    "export": "export",
}


def dispatch(opts: Any) -> int:
    """Load the YAML with the command line over it, then run the run_mode's module."""
    from .setup import load_config

    config = load_config(opts)
    module = importlib.import_module(f"{__name__}.{TASK_MODULES[config.run_mode]}")
    return module.run(config, opts)
