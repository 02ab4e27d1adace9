"""The MindSpore side of resharding, run as a subprocess: ``python -m orchestrator.reshard.offline OP ...``.

Standalone (stdlib + mindspore, Python 3.9+, no orchestrator imports), so it can also run on a node.
Each operation prints one JSON line last on stdout; errors exit 2 with the reason on stderr.

- ``merge-strategy SRC_DIR OUT``: ``mindspore.merge_pipeline_strategys`` (every stage's file in one).
- ``transform SRC DST --prefix P [--src-strategy S] [--dst-strategy S] [--weights-only]``:
  ``mindspore.transform_checkpoints`` from ``SRC/rank_N/`` (one file each) to ``DST/rank_N/P<N>.ckpt``;
  a strategy may be a file or a folder of per-rank files (merged first); none means unsharded.
- ``filter SRC OUT [--weights-only]``: rewrite one checkpoint, dropping optimizer state and the like.
- ``compare FILE FILE... [--weights-only]``: are the tensors equal (names, dtypes, values)?
- ``info FILE``: ``{name: [shape, dtype]}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any, Callable, Dict, List, Optional


def _ms() -> Any:
    import mindspore as ms

    ms.set_device("CPU")  # file operations only; never touch an NPU
    return ms


def _keep(weights_only: bool) -> Callable[[str], bool]:
    if not weights_only:
        return lambda name: True
    from iflytekspark.checkpoint import is_ignored_key

    return lambda name: not is_ignored_key(name)


def _save(ms: Any, params: Dict[str, Any], out: str) -> None:
    """Save atomically: a temporary name in the same folder, then rename."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = f"{out}.tmp{os.getpid()}.ckpt"
    ms.save_checkpoint([{"name": n, "data": p} for n, p in params.items()], tmp)
    os.replace(tmp, out)


def merge_strategy(src_dir: str, out: str) -> Dict[str, Any]:
    _ms().merge_pipeline_strategys(src_dir, out)
    return {"strategy": out}


def _strategy(path: Optional[str], work: str, name: str) -> Optional[str]:
    """A strategy file: ``path`` itself, or the merge of the folder ``path`` (written under ``work``)."""
    if not path or not os.path.isdir(path):
        return path or None
    return merge_strategy(path, os.path.join(work, f"{name}_merged_strategy.ckpt"))["strategy"]


def transform(src: str, dst: str, prefix: str, src_strategy: Optional[str], dst_strategy: Optional[str],
              weights_only: bool) -> Dict[str, Any]:  # fmt: skip
    ms = _ms()
    with tempfile.TemporaryDirectory(prefix="reshard-") as work:
        src_file = _strategy(src_strategy, work, "src")
        dst_file = _strategy(dst_strategy, work, "dst")
        ms.transform_checkpoints(src, dst, prefix, src_file, dst_file)
    files = {}
    for entry in sorted(os.listdir(dst)):
        if entry.startswith("rank_") and entry[5:].isdigit():
            path = os.path.join(dst, entry, f"{prefix}{entry[5:]}.ckpt")
            if weights_only:
                filter_ckpt(path, path, True)
            files[int(entry[5:])] = path
    return {"files": files}


def filter_ckpt(src: str, out: str, weights_only: bool) -> Dict[str, Any]:
    ms = _ms()
    keep, dropped = _keep(weights_only), []

    def choose(name: str) -> bool:
        if keep(name):
            return True
        dropped.append(name)
        return False

    params = ms.load_checkpoint(src, choice_func=choose)
    _save(ms, params, out)
    return {"file": out, "kept": len(params), "dropped": sorted(dropped)}


def compare(files: List[str], weights_only: bool) -> Dict[str, Any]:
    ms, keep = _ms(), _keep(weights_only)
    first = ms.load_checkpoint(files[0], choice_func=keep)
    differs: List[str] = []
    for other in files[1:]:
        params = ms.load_checkpoint(other, choice_func=keep)
        for name in sorted(set(first) | set(params)):
            a, b = first.get(name), params.get(name)
            same = a is not None and b is not None and a.dtype == b.dtype and a.shape == b.shape
            if not same or not (a.asnumpy() == b.asnumpy()).all():
                differs.append(f"{os.path.basename(other)}: {name}")
    return {"equal": not differs, "differs": differs[:50]}


def info(path: str) -> Dict[str, Any]:
    params = _ms().load_checkpoint(path)
    return {"params": {n: [list(p.shape), str(p.dtype)] for n, p in params.items()}}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="reshard-offline", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="op", required=True)
    s = sub.add_parser("merge-strategy")
    s.add_argument("src_dir")
    s.add_argument("out")
    t = sub.add_parser("transform")
    t.add_argument("src")
    t.add_argument("dst")
    t.add_argument("--prefix", default="checkpoint_")
    t.add_argument("--src-strategy")
    t.add_argument("--dst-strategy")
    f = sub.add_parser("filter")
    f.add_argument("src")
    f.add_argument("out")
    c = sub.add_parser("compare")
    c.add_argument("files", nargs="+")
    for q in (t, f, c):
        q.add_argument("--weights-only", action="store_true")
    i = sub.add_parser("info")
    i.add_argument("file")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    a = _parser().parse_args(argv)
    try:
        if a.op == "merge-strategy":
            out = merge_strategy(a.src_dir, a.out)
        elif a.op == "transform":
            out = transform(a.src, a.dst, a.prefix, a.src_strategy, a.dst_strategy, a.weights_only)
        elif a.op == "filter":
            out = filter_ckpt(a.src, a.out, a.weights_only)
        elif a.op == "compare":
            out = compare(a.files, a.weights_only)
        else:
            out = info(a.file)
    except (ValueError, TypeError, OSError, RuntimeError) as exc:
        print(f"reshard-offline {a.op}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
