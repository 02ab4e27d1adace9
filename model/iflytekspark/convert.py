"""``python -m iflytekspark.convert``: cast a checkpoint's weights to a training/inference dtype (docs/model.md §8).

Flags as the reference's weight_convert.py: --src_ckpt, --dst_ckpt (a file, or a folder that receives
checkpoint.ckpt), --dtype float16|float32|bfloat16 (default bfloat16), --embed_bf16 (embedding keys take
--dtype too; otherwise they stay float32), --layernorm_bf16 (likewise for keys containing "norm").
Attention masks (``slice_sparse_mask``) and KV caches are dropped; optimizer state (adam_m/adam_v,
global_step, ...) is dropped unless --keep-optimizer-state, which keeps it uncast.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .checkpoint import is_ignored_key
from .errors import IFlytekSparkError

DTYPES = ("float16", "float32", "bfloat16")


class ConvertError(IFlytekSparkError, ValueError):
    exit_code = 2


def classify(name: str) -> str:
    """'mask', 'cache', 'optimizer' or 'weight'."""
    if name.endswith("slice_sparse_mask"):
        return "mask"
    if name.endswith(("key_past", "value_past")):
        return "cache"
    return "optimizer" if is_ignored_key(name) else "weight"


def target_dtype(name: str, dtype: str, embed_too: bool, norm_too: bool) -> str:
    """The dtype a weight key is stored in: embeddings and norms stay float32 unless asked."""
    if "embedding" in name and not embed_too:
        return "float32"
    if "norm" in name and not norm_too:
        return "float32"
    return dtype


def plan(
    names: List[str], dtype: str, embed_too: bool, norm_too: bool, keep_opt: bool
) -> Dict[str, Optional[str]]:
    """key -> dtype to store it in, "keep" (uncast) or None (dropped)."""
    out: Dict[str, Optional[str]] = {}
    for name in names:
        kind = classify(name)
        if kind == "weight":
            out[name] = target_dtype(name, dtype, embed_too, norm_too)
        else:
            out[name] = "keep" if kind == "optimizer" and keep_opt else None
    return out


def destination(dst: str) -> Path:
    path = Path(dst)
    return path / "checkpoint.ckpt" if path.is_dir() else path


def convert(
    src: str,
    dst: str,
    dtype: str = "bfloat16",
    embed_too: bool = False,
    norm_too: bool = False,
    keep_opt: bool = False,
) -> Tuple[Path, Counter]:
    """Write the converted checkpoint; return its path and counts per outcome."""
    import mindspore as ms
    from mindspore import ops

    if dtype not in DTYPES:
        raise ConvertError(f"--dtype {dtype}: must be one of {', '.join(DTYPES)}")
    if not Path(src).is_file():
        raise ConvertError(f"--src_ckpt {src}: no such checkpoint file")
    params = ms.load_checkpoint(src)
    decisions = plan(list(params), dtype, embed_too, norm_too, keep_opt)
    items, counts = [], Counter()
    for name, value in params.items():
        how = decisions[name]
        if how is None:
            counts[f"dropped {classify(name)}"] += 1
            continue
        data = value if how == "keep" else ops.cast(value, getattr(ms, how))
        counts["kept uncast" if how == "keep" else f"{how}"] += 1
        items.append({"name": name, "data": data})
    out = destination(dst)
    out.parent.mkdir(parents=True, exist_ok=True)
    ms.save_checkpoint(items, str(out))
    return out, counts


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m iflytekspark.convert", description=__doc__.splitlines()[0])
    p.add_argument("--src_ckpt", required=True)
    p.add_argument("--dst_ckpt", required=True)
    p.add_argument("--dtype", default="bfloat16", choices=DTYPES)
    p.add_argument("--embed_bf16", action="store_true", help="embedding keys take --dtype too")
    p.add_argument("--layernorm_bf16", action="store_true", help="keys containing 'norm' take --dtype too")
    p.add_argument("--keep-optimizer-state", dest="keep_opt", action="store_true", help="keep it, uncast")
    a = p.parse_args(argv)
    try:
        out, counts = convert(a.src_ckpt, a.dst_ckpt, a.dtype, a.embed_bf16, a.layernorm_bf16, a.keep_opt)
    except IFlytekSparkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    print(f"wrote {out}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
