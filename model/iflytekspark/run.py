"""``python -m iflytekspark.run``: the one entry point, with the reference's flags.

Every run_mode is a module in :mod:`iflytekspark.tasks` (train and finetune share one). A flag given
on the command line overrides the YAML; a flag left out leaves the YAML alone (the reference always
overwrote use_parallel and auto_trans_ckpt; we do not). Boolean flags take True/False like the reference.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, fields
from typing import List, Optional

from .errors import IFlytekSparkError

RUN_MODES = ("train", "finetune", "eval", "predict", "export")


def str2bool(text: str) -> bool:
    """True/False the way the reference's flags take them (also yes/no, 1/0)."""
    value = text.strip().lower()
    if value in ("true", "t", "yes", "y", "1"):
        return True
    if value in ("false", "f", "no", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


@dataclass(frozen=True)
class RunOptions:
    """The command line; None means "not given" (the YAML's value stands)."""

    config: str
    run_mode: Optional[str] = None
    task: str = "text_generation"
    use_parallel: Optional[bool] = None
    load_checkpoint: Optional[str] = None
    auto_trans_ckpt: Optional[bool] = None
    resume: Optional[bool] = None
    train_dataset: Optional[str] = None
    eval_dataset: Optional[str] = None
    predict_data: Optional[str] = None
    predict_length: Optional[int] = None
    predict_batch: Optional[int] = None
    optimizer_parallel: Optional[bool] = None
    device_id: Optional[int] = None
    prompt: Optional[str] = None
    tokenizer_file: Optional[str] = None
    mindir_save_dir: Optional[str] = None
    streamer: Optional[bool] = None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m iflytekspark.run", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="MindFormers YAML of the run")
    p.add_argument("--run_mode", choices=RUN_MODES, help="default: the YAML's run_mode, else train")
    p.add_argument("--task", default="text_generation")
    p.add_argument("--use_parallel", type=str2bool, help="initialise communication from the launcher's env")
    p.add_argument("--load_checkpoint", help="checkpoint file, or folder of rank_N/ folders")
    p.add_argument("--auto_trans_ckpt", type=str2bool)
    p.add_argument("--resume", type=str2bool, help="resume training (step count, optimizer state)")
    p.add_argument("--train_dataset", help="training MindRecord file or folder")
    p.add_argument("--eval_dataset", help="evaluation MindRecord file or folder")
    p.add_argument("--predict_data", help="[q1##q2] or a .json/.jsonl file")
    p.add_argument("--predict_length", type=int)
    p.add_argument("--predict_batch", type=int)
    p.add_argument("--optimizer_parallel", type=str2bool)
    p.add_argument("--device_id", type=int)
    p.add_argument("--prompt")
    p.add_argument("--tokenizer_file", help="tokenizer directory (*.model, *.vocab) or its *.model file")
    p.add_argument("--mindir_save_dir")
    p.add_argument("--streamer", type=str2bool)
    return p


def parse_args(argv: Optional[List[str]] = None) -> RunOptions:
    ns = build_parser().parse_args(argv)
    return RunOptions(**{f.name: getattr(ns, f.name) for f in fields(RunOptions)})


def main(argv: Optional[List[str]] = None) -> int:
    opts = parse_args(argv)
    from .tasks import dispatch  # after parsing: --help must not import mindspore

    try:
        return dispatch(opts)
    except IFlytekSparkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)


if __name__ == "__main__":
    sys.exit(main())
