"""run_mode train and finetune: MindFormers' Trainer, built from the YAML, as on Ascend.

Checkpoints go to ``output/checkpoint/rank_N/`` (CheckpointMonitor of the YAML). With --resume True and
--load_checkpoint pointing at such a folder (or a file), training continues from the saved step with the
saved optimizer state.
"""

from __future__ import annotations

from typing import Any

from .setup import RunConfigError, init_context


def run(config: Any, opts: Any) -> int:
    from mindformers import Trainer

    if config.get("resume_training") and not config.get("load_checkpoint"):
        raise RunConfigError(
            "--resume True needs --load_checkpoint (a checkpoint file or a folder of rank_N/)"
        )
    init_context(config)
    trainer = Trainer(args=config, task=opts.task)
    checkpoint = config.get("load_checkpoint") or False
    options = {
        "auto_trans_ckpt": bool(config.get("auto_trans_ckpt")),
        "resume_training": bool(config.get("resume_training")),
    }
    try:
        if config.run_mode == "finetune":
            trainer.finetune(finetune_checkpoint=checkpoint, **options)
        else:
            trainer.train(train_checkpoint=checkpoint, **options)
    except ValueError as exc:
        # Resuming from the checkpoint of the last step: MindFormers asks Model.train for zero epochs
        # and refuses. Nothing is left to train, which is success, not an error.
        if not (options["resume_training"] and "initial_epoch" in str(exc)):
            raise
        print(f"resume: the checkpoint is at the final step of {config.runner_config.epochs} epoch(s); "
              "training is already complete, nothing left to train", flush=True)  # fmt: skip
    return 0
