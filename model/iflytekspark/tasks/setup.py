"""Loading the run's YAML and setting up MindSpore/MindFormers (device, communication, registrations)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import IFlytekSparkError
from ..parallel_env import LaunchEnv, detect
from .overrides import apply_overrides


def logger():
    """MindFormers' logger (its files land in output/log/rank_N, next to the Trainer's)."""
    from mindformers.tools.logger import logger as mf_logger

    return mf_logger


class RunConfigError(IFlytekSparkError, ValueError):
    """The run's YAML or flags are unusable; the message says which and how to fix it."""

    exit_code = 2


def register_all() -> None:
    """Make the model, its config, the optimizer, LR schedule and wrapper known to MindFormers."""
    from ..registry import register
    from ..train import register as register_training

    register()
    register_training()


def load_config(opts: Any):
    """The YAML of ``opts.config`` as a MindFormerConfig, with the given flags written over it."""
    path = Path(opts.config)
    if not path.is_file() or path.suffix not in (".yaml", ".yml"):
        raise RunConfigError(f"--config {path}: no such YAML file")
    from mindformers import MindFormerConfig

    config = MindFormerConfig(str(path.resolve()))
    for line in apply_overrides(config, opts):
        logger().info("command line: %s", line)
    return config


def _device_target(config: Any) -> str:
    """The YAML's device_target, or CPU when it names Ascend and this MindSpore has no Ascend."""
    wanted = (config.get("context") or {}).get("device_target") or "Ascend"
    if wanted == "Ascend":
        import mindspore as ms

        if not ms.hal.is_available("Ascend"):
            logger().warning("no Ascend device available: running on CPU")
            return "CPU"
    return wanted


def _cpu_data_parallel(config: Any, env: LaunchEnv) -> None:
    """On CPU only data parallelism exists: check the layout and set the parallel context for it."""
    pc = config.get("parallel_config") or {}
    mp, pp = int(pc.get("model_parallel") or 1), int(pc.get("pipeline_stage") or 1)
    dp = int(pc.get("data_parallel") or env.world_size)
    problems = []
    if mp != 1 or pp != 1:
        problems.append(f"model_parallel {mp} / pipeline_stage {pp}: the CPU backend is data-parallel only")
    if dp != env.world_size:
        problems.append(
            f"parallel_config.data_parallel {dp} but the launcher started {env.world_size} worker(s)"
        )
    if problems:
        raise RunConfigError("the YAML does not fit a CPU run:\n" + "\n".join(f"  - {p}" for p in problems))
    config.parallel_config["data_parallel"] = env.world_size
    parallel = config.get("parallel") or {}
    parallel.update(parallel_mode=0, full_batch=False, gradients_mean=True, enable_parallel_optimizer=False)
    parallel.pop("dataset_strategy", None)
    config["parallel"] = parallel


def init_context(config: Any) -> None:
    """Set the device, initialise communication when use_parallel, and build MindFormers' context."""
    register_all()
    from mindformers.core.context import build_context

    target = _device_target(config)
    config.context["device_target"] = target
    if config.get("use_parallel"):
        env = detect(os.environ, target)  # ParallelEnvError lists what is missing
        if target == "CPU" and not env.is_scheduler:
            _cpu_data_parallel(config, env)
        logger().info("parallel launch: %s, rank %s of %d", env.style, env.rank, env.world_size)
    build_context(config)
    if config.get("profile"):
        from mindformers.core.context import build_profile_cb

        config.profile_cb = build_profile_cb(config)
