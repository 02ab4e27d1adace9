"""run_mode eval: token-weighted loss and perplexity of a checkpoint on the eval MindRecord.

Each batch's loss is the model's own training loss (same mask rules, same alignment switch), weighted by
its number of loss tokens. Prints ``eval: loss L, perplexity P, rows R, tokens T`` and writes the same to
``<output_dir>/eval_result.json``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

from .setup import RunConfigError, init_context, logger


def _mindrecord_files(path: str) -> List[str]:
    p = Path(path)
    files = sorted(str(f) for f in p.glob("*.mindrecord")) if p.is_dir() else [str(p)]
    if not path or not all(Path(f).is_file() for f in files) or not files:
        raise RunConfigError(f"eval dataset {path!r}: no MindRecord file (set --eval_dataset)")
    return files


def checkpoint_file(path: str) -> str:
    """A checkpoint file, or the newest *.ckpt of ``path/rank_0`` (or of ``path`` itself)."""
    p = Path(path)
    if p.is_file():
        return str(p)
    for folder in (p / "rank_0", p):
        found = sorted(folder.glob("*.ckpt"), key=lambda f: f.stat().st_mtime) if folder.is_dir() else []
        if found:
            return str(found[-1])
    raise RunConfigError(f"--load_checkpoint {path!r}: no .ckpt file there (nor in rank_0/)")


def loss_tokens(batch: Dict[str, np.ndarray], pad_id: int, reference_alignment: bool) -> int:
    """How many positions the model's loss averages over (the same rule as the model)."""
    ids = batch["input_ids"]
    if "loss_mask" in batch:
        mask = batch["loss_mask"][:, :-1] if reference_alignment else batch["loss_mask"][:, 1:]
    else:
        mask = (ids[:, :-1] if reference_alignment else ids[:, 1:]) != pad_id
    return int(np.count_nonzero(mask))


def run(config: Any, opts: Any) -> int:
    import mindspore as ms
    import mindspore.dataset as ds
    from mindformers.models.build_model import build_network

    from ..checkpoint import load_weights

    init_context(config)
    data_cfg = config.eval_dataset
    columns = list(data_cfg.get("input_columns") or ["input_ids"])
    files = _mindrecord_files(data_cfg.data_loader.dataset_dir)
    if not config.get("load_checkpoint"):
        raise RunConfigError("run_mode eval needs a checkpoint: set --load_checkpoint")
    network = build_network(config.model, default_args={"parallel_config": config.parallel_config})
    report = load_weights(network, checkpoint_file(config.load_checkpoint), strict=True)
    logger().info("eval checkpoint: %s", report)
    network.set_train(True)  # training mode returns the masked-mean loss; no gradients are taken
    model_cfg = config.model.model_config
    pad_id = int(model_cfg.get("pad_token_id") or 0)
    reference = model_cfg.get("loss_mask_alignment") == "reference"
    dataset = ds.MindDataset(files, columns_list=columns, shuffle=False)
    dataset = dataset.batch(int(data_cfg.get("batch_size") or 1), drop_remainder=False)
    total, tokens, rows = 0.0, 0, 0
    for batch in dataset.create_dict_iterator(output_numpy=True):
        batch = {k: v.astype(np.int32) for k, v in batch.items()}
        count = loss_tokens(batch, pad_id, reference)
        loss = network(*[ms.Tensor(batch[c]) for c in columns])
        total += float(loss.asnumpy()) * count
        tokens, rows = tokens + count, rows + len(batch["input_ids"])
    if tokens == 0:
        raise RunConfigError(f"eval dataset {files[0]}: no tokens to score")
    mean = total / tokens
    result = {"loss": mean, "perplexity": math.exp(mean), "rows": rows, "tokens": tokens}
    print(f"eval: loss {mean:.6f}, perplexity {result['perplexity']:.4f}, rows {rows}, tokens {tokens}")
    out = Path(config.get("output_dir") or "./output")
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval_result.json").write_text(json.dumps(result, indent=1) + os.linesep, encoding="utf-8")
    return 0
