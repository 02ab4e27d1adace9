"""run_mode eval: token-weighted loss and perplexity of a checkpoint on the eval MindRecord.

Each batch's loss is the model's own training loss (same mask rules, same alignment switch), weighted by
its number of loss tokens. Columns are passed by name, as MindFormers' Trainer does: each dataset column
goes to the network's keyword of the same name (or of ``construct_args_key``), so SFT's ``loss_mask`` is
the loss mask, not the labels. Prints ``eval: loss L, perplexity P, rows R, tokens T`` and writes the
same to ``<output_dir>/eval_result.json``.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

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


def construct_keys(data_cfg: Any, columns: Sequence[str], construct: Callable) -> List[str]:
    """The network keyword of each dataset column: ``construct_args_key`` when the YAML gives it, else the
    column's own name (MindFormers' Trainer rule). Every keyword must be an input of ``construct``."""
    keys = list(data_cfg.get("construct_args_key") or columns)
    if len(keys) != len(columns):
        raise RunConfigError(
            f"eval_dataset.construct_args_key {keys} names {len(keys)} input(s) but input_columns "
            f"{list(columns)} has {len(columns)}; give one keyword per column"
        )
    params = inspect.signature(construct).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    unknown = [k for k in keys if k not in named and not takes_any]
    if unknown or "input_ids" not in keys:
        what = f"{unknown} are not inputs" if unknown else "input_ids is missing"
        raise RunConfigError(
            f"eval dataset columns {keys}: {what} of the network ({', '.join(named)}); "
            "set eval_dataset.input_columns (or construct_args_key) to names among them, with input_ids"
        )
    return keys


def loss_tokens(batch: Dict[str, np.ndarray], pad_id: int, reference_alignment: bool) -> int:
    """How many positions the model's loss averages over (the same rule as the model); ``batch`` maps
    the network's keywords (input_ids, labels, loss_mask) to arrays."""
    ids = batch["input_ids"]
    if "loss_mask" in batch:
        mask = batch["loss_mask"][:, :-1] if reference_alignment else batch["loss_mask"][:, 1:]
    elif reference_alignment:
        mask = ids[:, :-1] != pad_id
    else:
        mask = batch.get("labels", ids)[:, 1:] != pad_id
    return int(np.count_nonzero(mask))


def evaluate(network: Any, batches: Any, keys: Sequence[str], pad_id: int, reference: bool) -> Dict[str, Any]:
    """Token-weighted mean loss of ``network`` (in training mode) over ``batches``: tuples of arrays, one
    per dataset column, each passed as the keyword of ``keys`` at its position."""
    import mindspore as ms

    total, tokens, rows = 0.0, 0, 0
    for columns in batches:
        inputs = {k: np.asarray(v).astype(np.int32) for k, v in zip(keys, columns)}
        count = loss_tokens(inputs, pad_id, reference)
        loss = network(**{k: ms.Tensor(v) for k, v in inputs.items()})
        total += float(loss.asnumpy()) * count
        tokens, rows = tokens + count, rows + len(inputs["input_ids"])
    mean = total / tokens if tokens else float("nan")
    return {
        "loss": mean,
        "perplexity": math.exp(mean) if tokens else float("nan"),
        "rows": rows,
        "tokens": tokens,
    }


def run(config: Any, opts: Any) -> int:
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
    keys = construct_keys(data_cfg, columns, network.construct)
    report = load_weights(network, checkpoint_file(config.load_checkpoint), strict=True)
    logger().info("eval checkpoint: %s", report)
    network.set_train(True)  # training mode returns the masked-mean loss; no gradients are taken
    model_cfg = config.model.model_config
    pad_id = int(model_cfg.get("pad_token_id") or 0)
    reference = model_cfg.get("loss_mask_alignment") == "reference"
    dataset = ds.MindDataset(files, columns_list=columns, shuffle=False)
    dataset = dataset.batch(int(data_cfg.get("batch_size") or 1), drop_remainder=False)
    result = evaluate(network, dataset.create_tuple_iterator(output_numpy=True), keys, pad_id, reference)
    if result["tokens"] == 0:
        raise RunConfigError(f"eval dataset {files[0]}: no tokens to score")
    mean, rows, tokens = result["loss"], result["rows"], result["tokens"]
    print(f"eval: loss {mean:.6f}, perplexity {result['perplexity']:.4f}, rows {rows}, tokens {tokens}")
    out = Path(config.get("output_dir") or "./output")
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval_result.json").write_text(json.dumps(result, indent=1) + os.linesep, encoding="utf-8")
    return 0
