"""What goes where: the generated plan files and the job's inputs, per node.

Job input paths (tokenizer, datasets, checkpoint, predict file) are controller paths. A path under a
cluster shared path is used in place on every node; any other is pushed to
``<job dir>/inputs/<what>/<basename>`` on each node. A MindRecord file travels with its ``.db``
index, a tokenizer ``.model`` file with the ``.vocab`` beside it. The checkpoint is what the plan's
``CheckpointLoad`` says the ranks load (the one complete file, or the folder as given); a file that
MindFormers reshards goes to ``<job dir>/inputs/load_checkpoint/<stem>/rank_0/<file>``, and a sharded
source's strategy folder to ``<job dir>/inputs/src_strategy/``. Generated files come from the plan
folder (paths relative to it).
"""

from __future__ import annotations

import posixpath
from typing import Mapping, Optional, Sequence

from orchestrator.plan.job import JobOptions
from orchestrator.plan.loading import CheckpointLoad
from orchestrator.plan.model import Transfer

CODE_DIR_FILE = "env/code_dir"  # under the job dir: the shipped code folder, written by staging
INPUT_KEYS = ("tokenizer", "train_dataset", "eval_dataset", "load_checkpoint", "predict_data")
# Which inputs each task reads.
TASK_INPUTS = {
    "pretrain": ("train_dataset", "eval_dataset", "load_checkpoint"),
    "finetune": ("train_dataset", "eval_dataset", "load_checkpoint"),
    "lora": ("train_dataset", "eval_dataset", "load_checkpoint"),
    "predict": ("tokenizer", "load_checkpoint", "predict_data"),
    "predict_lora": ("tokenizer", "load_checkpoint", "predict_data"),
    "export": ("load_checkpoint",),
    "eval": ("eval_dataset", "load_checkpoint"),
}


def _is_shared(path: str, shared_paths: Sequence[str]) -> bool:
    norm = posixpath.normpath(path)
    return any(norm == s.rstrip("/") or norm.startswith(s.rstrip("/") + "/") for s in shared_paths)


def _is_file_input(key: str, value: str) -> bool:
    """``predict_data`` may be inline questions (``q1##q2``): only .json/.jsonl are files."""
    return key != "predict_data" or value.endswith((".json", ".jsonl"))


def _value(key: str, opts: JobOptions, ckpt: Optional[CheckpointLoad]) -> Optional[str]:
    """The controller path of input ``key`` (the checkpoint: what the ranks load)."""
    return ckpt.load if key == "load_checkpoint" and ckpt is not None else getattr(opts, key)


def _stem(path: str) -> str:
    return posixpath.splitext(posixpath.basename(path.rstrip("/")))[0]


def node_inputs(task: str, opts: JobOptions, job_dir: str, shared_paths: Sequence[str],
                ckpt: Optional[CheckpointLoad] = None) -> dict[str, str]:  # fmt: skip
    """``{input key: path on the node}`` of every input ``task`` reads and ``opts`` sets (plus
    ``src_strategy`` when the checkpoint's strategy files travel with it)."""
    out: dict[str, str] = {}
    for key in TASK_INPUTS[task]:
        value = _value(key, opts, ckpt)
        if not value:
            continue
        if key == "load_checkpoint" and ckpt is not None and ckpt.as_rank_folder:
            out[key] = f"{job_dir}/inputs/{key}/{_stem(value)}"
        elif not _is_file_input(key, value) or _is_shared(value, shared_paths):
            out[key] = value
        else:
            out[key] = f"{job_dir}/inputs/{key}/{posixpath.basename(value.rstrip('/'))}"
    if ckpt is not None and ckpt.strategy and "load_checkpoint" in out:
        s = ckpt.strategy
        out["src_strategy"] = s if _is_shared(s, shared_paths) else f"{job_dir}/inputs/src_strategy/{posixpath.basename(s.rstrip('/'))}"  # fmt: skip
    if task == "export":
        out["mindir_save_dir"] = opts.mindir_save_dir or f"{job_dir}/output/mindir"
    return out


def input_transfers(host: str, task: str, opts: JobOptions, inputs: dict[str, str],
                    ckpt: Optional[CheckpointLoad] = None, companions: Mapping[str, str] = {}) -> list[Transfer]:  # fmt: skip
    """Transfers of the inputs whose node path differs from the controller path. ``companions``:
    ``{input key: controller file}`` sent into the same node folder (a tokenizer's ``.vocab``)."""
    out = []
    for key in TASK_INPUTS[task]:
        value = _value(key, opts, ckpt)
        if not value or inputs.get(key) == value:
            continue
        dest = inputs[key]
        if key == "load_checkpoint" and ckpt is not None and ckpt.as_rank_folder:
            dest = f"{dest}/rank_0/{posixpath.basename(value)}"
        out.append(Transfer(host, "input", value.rstrip("/"), dest))
        if value.endswith(".mindrecord"):
            out.append(Transfer(host, "input", value + ".db", dest + ".db"))
        if companions.get(key):
            extra = companions[key]
            out.append(
                Transfer(
                    host, "input", extra, posixpath.join(posixpath.dirname(dest), posixpath.basename(extra))
                )
            )
    if ckpt is not None and ckpt.strategy and inputs.get("src_strategy") not in (None, ckpt.strategy):
        out.append(Transfer(host, "input", ckpt.strategy.rstrip("/"), inputs["src_strategy"]))
    return out


def env_file_path(job_dir: str, name: str) -> str:
    """Where process ``name``'s env file (rank_<R> | scheduler) lives on its node."""
    return f"{job_dir}/env/env_{name}.sh"


def generated_transfers(
    host: str, job_dir: str, task: str, names: Sequence[str], dynamic: bool
) -> list[Transfer]:
    """The plan folder's files this node needs, with their node paths (``names``: rank_<R>, scheduler)."""
    base = f"nodes/{host}"
    out = [Transfer(host, "generated", f"{base}/{task}.yaml", f"{job_dir}/config/{task}.yaml")]
    if not dynamic:
        out.append(Transfer(host, "generated", "rank_table.json", f"{job_dir}/rank_table.json"))
    out += [
        Transfer(host, "generated", f"{base}/env_{n}.sh", env_file_path(job_dir, n), 0o600) for n in names
    ]
    out.append(Transfer(host, "generated", f"{base}/commands.sh", f"{job_dir}/commands.sh", 0o755))
    return out
