"""Fixtures of the inference tests: graph mode, a tiny model's Steps, full recomputation, run.py runs."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import pytest


@pytest.fixture(scope="module")
def graph_module(ms_context):
    """GRAPH mode for a whole test module (each graph compiles once per shape), PyNative after."""
    ms_context.set_context(mode=ms_context.GRAPH_MODE)
    yield ms_context
    ms_context.set_context(mode=ms_context.PYNATIVE_MODE)


@pytest.fixture(scope="module")
def make_steps(tiny_model, graph_module) -> Any:
    """callable (seed=0, **config overrides) -> Steps of a tiny model, in graph mode."""
    from iflytekspark.inference.steps import Steps

    def make(seed: int = 0, **overrides: Any) -> Steps:
        return Steps(tiny_model(seed, **overrides))

    return make


def full_logits(model: Any, rows: Sequence[Sequence[int]]) -> List[np.ndarray]:
    """Logits (len, V) of every row by full recomputation (no cache): one call, rows right-padded
    (the model is causal, so the padding after a row's end changes nothing before it)."""
    from mindspore import Tensor

    width = max(len(r) for r in rows)
    batch = np.zeros((len(rows), width), np.int32)
    for i, r in enumerate(rows):
        batch[i, : len(r)] = r
    logits = model.logits(Tensor(batch)).asnumpy()
    return [logits[i, : len(r)] for i, r in enumerate(rows)]


@dataclass
class Finished:
    """A finished ``python -m iflytekspark.run`` in its own working directory (stderr kept apart)."""

    cwd: Path
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_config(**overrides: Any) -> Dict[str, Any]:
    """A tiny run YAML (as a dict) without datasets: the model package's own template."""
    from iflytekspark.testing import tiny_run_config

    return tiny_run_config("", **overrides)


def run_all(runs: Dict[str, Tuple[Path, Dict[str, Any], Sequence[str]]]) -> Dict[str, Finished]:
    """Start ``python -m iflytekspark.run --config run.yaml *args`` in each cwd at once; wait for all."""
    from iflytekspark.testing import write_run_config

    started = {}
    for name, (cwd, config, args) in runs.items():
        cwd.mkdir(parents=True, exist_ok=True)
        write_run_config(cwd / "run.yaml", config)
        cmd = [sys.executable, "-m", "iflytekspark.run", "--config", "run.yaml", *args]
        started[name] = (cwd, subprocess.Popen(cmd, cwd=cwd, stdout=PIPE, stderr=PIPE, text=True))
    done = {}
    for name, (cwd, proc) in started.items():
        out, err = proc.communicate(timeout=600)
        done[name] = Finished(cwd, proc.returncode, out, err)
    return done
