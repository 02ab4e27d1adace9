"""What goes where: the generated plan files and the job's inputs, per node.

Job input paths (tokenizer, datasets, checkpoint, predict file) are controller paths. A path under a
cluster shared path is used in place on every node; any other is pushed to
``<job dir>/inputs/<what>/<basename>`` on each node. A MindRecord file travels with its ``.db``
index. Generated files come from the plan folder (paths relative to it).
"""

from __future__ import annotations

import posixpath
from typing import Optional, Sequence

from orchestrator.plan.job import JobOptions
from orchestrator.plan.model import Transfer

INPUT_KEYS = ("tokenizer", "train_dataset", "eval_dataset", "load_checkpoint", "predict_data")
# Which inputs each task reads.
TASK_INPUTS = {
    "pretrain": ("train_dataset", "eval_dataset", "load_checkpoint"),
    "finetune": ("train_dataset", "eval_dataset", "load_checkpoint"),
    "lora": ("train_dataset", "eval_dataset", "load_checkpoint"),
    "predict": ("tokenizer", "load_checkpoint", "predict_data"),
    "predict_lora": ("tokenizer", "load_checkpoint", "predict_data"),
    "export": ("load_checkpoint",),
}


def _is_shared(path: str, shared_paths: Sequence[str]) -> bool:
    norm = posixpath.normpath(path)
    return any(norm == s.rstrip("/") or norm.startswith(s.rstrip("/") + "/") for s in shared_paths)


def _is_file_input(key: str, value: str) -> bool:
    """``predict_data`` may be inline questions (``q1##q2``): only .json/.jsonl are files."""
    return key != "predict_data" or value.endswith((".json", ".jsonl"))


def node_inputs(task: str, opts: JobOptions, job_dir: str, shared_paths: Sequence[str]) -> dict[str, str]:
    """``{input key: path on the node}`` of every input ``task`` reads and ``opts`` sets."""
    out: dict[str, str] = {}
    for key in TASK_INPUTS[task]:
        value: Optional[str] = getattr(opts, key)
        if not value:
            continue
        if not _is_file_input(key, value) or _is_shared(value, shared_paths):
            out[key] = value
        else:
            out[key] = f"{job_dir}/inputs/{key}/{posixpath.basename(value.rstrip('/'))}"
    if task == "export":
        out["mindir_save_dir"] = opts.mindir_save_dir or f"{job_dir}/output/mindir"
    return out


def input_transfers(host: str, task: str, opts: JobOptions, inputs: dict[str, str]) -> list[Transfer]:
    """Transfers of the inputs whose node path differs from the controller path."""
    out = []
    for key in TASK_INPUTS[task]:
        value = getattr(opts, key)
        if not value or inputs.get(key) == value:
            continue
        out.append(Transfer(host, "input", value.rstrip("/"), inputs[key]))
        if value.endswith(".mindrecord"):
            out.append(Transfer(host, "input", value + ".db", inputs[key] + ".db"))
    return out


def generated_transfers(
    host: str, job_dir: str, task: str, names: Sequence[str], dynamic: bool
) -> list[Transfer]:
    """The plan folder's files this node needs, with their node paths (``names``: rank_<R>, scheduler)."""
    base = f"nodes/{host}"
    out = [Transfer(host, "generated", f"{base}/{task}.yaml", f"{job_dir}/config/{task}.yaml")]
    if not dynamic:
        out.append(Transfer(host, "generated", "rank_table.json", f"{job_dir}/rank_table.json"))
    out += [
        Transfer(host, "generated", f"{base}/env_{n}.sh", f"{job_dir}/env/env_{n}.sh", 0o600) for n in names
    ]
    out.append(Transfer(host, "generated", f"{base}/commands.sh", f"{job_dir}/commands.sh", 0o755))
    return out
