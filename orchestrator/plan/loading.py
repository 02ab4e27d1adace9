"""How the ranks load ``job.load_checkpoint``: directly, per rank, or resharded (MindFormers 1.7 facts).

- A layout that does not shard weights (mp 1, pp 1, no optimizer sharding: data parallel, and every
  CPU job) keeps complete weights on every rank and writes no strategy files, so ``auto_trans_ckpt``
  cannot work there (``dst_strategy ... does not contain strategy file of rank_N``). Every rank loads
  the complete checkpoint directly: one ``.ckpt`` file (MindFormers then loads that file on every
  rank; a ``rank_N/`` parent folder would make rank N look for its own folder).
- A layout that shards weights needs the checkpoint transformed unless it was saved with this very
  layout: ``auto_trans_ckpt`` reshards on load (MindFormers takes the source as a folder of
  ``rank_N/``: a complete file is shipped as ``<name>/rank_0/<file>``; shards need their strategy
  files, ``src_strategy_path_or_dir``), or, beyond 8 devices without shared output, the offline flow.
- predict, predict_lora, export and eval load through the model package: one complete checkpoint
  per process, never resharded.

The source is read on this machine (``orchestrator.checkpoint.source``); one that is not here (a
shared path the controller does not mount, or a typo: launch refuses a missing input) is used as
given. ``job.auto_trans_ckpt`` set explicitly is obeyed where it can work and refused where it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Optional

from orchestrator.errors import InputError, Problem

if TYPE_CHECKING:
    from orchestrator.checkpoint.source import CheckpointSource

AUTO_TRANS_MAX_DEVICES = 8  # MindFormers reshards on the fly without shared storage up to one node
UNKNOWN = "unknown"


@dataclass(frozen=True)
class CheckpointLoad:
    """The decision, as plan data (plan.json ``checkpoint``).

    ``layout``: complete | replicas | shards | unknown (not on this machine); ``case``: direct (every
    rank loads one complete file) | per-rank (rank R loads ``rank_R/``) | reshard (auto_trans_ckpt on
    load) | reshard-offline (the offline flow) | as-given; ``load``: the controller path the ranks load;
    ``as_rank_folder``: ``load`` (a file) is shipped as ``<stem>/rank_0/<file>``; ``strategy``: the
    sharded source's strategy folder, shipped with it."""

    source: str
    layout: str
    ranks: int
    sharded_target: bool
    case: str
    auto_trans_ckpt: bool
    load: str
    reason: str
    as_rank_folder: bool = False
    strategy: Optional[str] = None

    @property
    def note(self) -> str:
        return f"checkpoint: {self.case}: {self.reason}"


def shards_weights(st: Any, accelerator: bool) -> bool:
    """True when the layout splits parameters over ranks (model/pipeline parallel, optimizer sharding)."""
    return st.mp > 1 or st.pp > 1 or (st.training and st.optimizer_shard and accelerator)


def _layout(st: Any, accelerator: bool) -> str:
    text = f"dp{st.dp} mp{st.mp} pp{st.pp}"
    return text + (", optimizer sharding" if st.training and st.optimizer_shard and accelerator else "")


def _what(src: CheckpointSource) -> str:
    name = PurePosixPath(src.file or "").name
    if src.layout == "replicas":
        return (f"rank_0's {name} of {src.path} (rank_0..rank_{src.ranks - 1} without strategy files: "
                "a data-parallel job's replicas, each complete)")  # fmt: skip
    return f"the complete checkpoint {src.file}"


def _merge_problem(src: CheckpointSource, why: str) -> InputError:
    return InputError([Problem(src.path, "job.load_checkpoint",
                               f"{src.ranks} shards of a sharded layout (strategy files in {src.strategy}); {why}",
                               f"merge them into one file first: orchestrate checkpoint merge {src.path} --strategy "
                               f"{src.strategy} --out FILE, then set job.load_checkpoint=FILE")])  # fmt: skip


def _package(
    task: str, path: str, src: Optional[CheckpointSource], explicit: Optional[bool]
) -> CheckpointLoad:
    """predict/export/eval: the model package loads one complete checkpoint in every process."""
    ignored = " (job.auto_trans_ckpt does not apply)" if explicit else ""
    if src is None:
        return CheckpointLoad(path, UNKNOWN, 0, False, "as-given", False, path,
                              f"{path} is not on this machine: every process loads it as given (a file, or "
                              f"the newest .ckpt of rank_0/ or of the folder){ignored}")  # fmt: skip
    if src.layout == "shards":
        raise _merge_problem(src, f"{task} loads one complete checkpoint")
    return CheckpointLoad(path, src.layout, src.ranks, False, "direct", False, str(src.file),
                          f"{task} loads one complete checkpoint in every process: {_what(src)}{ignored}")  # fmt: skip


def _unsharded(st: Any, lay: str, path: str, src: Optional[CheckpointSource], explicit: Optional[bool]) -> CheckpointLoad:  # fmt: skip
    if explicit:
        raise InputError([Problem("--set", "job.auto_trans_ckpt", f"the layout {lay} does not shard weights and "
                                  "writes no strategy files, which auto_trans_ckpt needs (MindFormers stops with "
                                  "'dst_strategy ... does not contain strategy file')",
                                  "drop job.auto_trans_ckpt: every rank then loads the complete checkpoint")])  # fmt: skip
    why = f"the layout {lay} does not shard weights (no strategy files)"
    if src is None:
        return CheckpointLoad(path, UNKNOWN, 0, False, "as-given", False, path,
                              f"{why}: {path} is not on this machine and is loaded as given, auto_trans_ckpt off")  # fmt: skip
    if src.layout == "shards":
        raise _merge_problem(src, f"{why}, so every rank needs the complete weights")
    return CheckpointLoad(path, src.layout, src.ranks, False, "direct", False, str(src.file),
                          f"{why}: every rank loads {_what(src)} directly, auto_trans_ckpt off")  # fmt: skip


def _sharded(st: Any, lay: str, path: str, src: Optional[CheckpointSource], explicit: Optional[bool],
             offline: bool) -> CheckpointLoad:  # fmt: skip
    if explicit is False:  # rank folders are then this layout's shards (the offline flow's, say)
        if src is None or src.layout == "complete":
            load = path if src is None else str(src.file)
            return CheckpointLoad(path, src.layout if src else UNKNOWN, src.ranks if src else 0, True,
                                  "as-given" if src is None else "direct", False, load,
                                  f"job.auto_trans_ckpt=false: loaded as it is, not resharded to {lay}")  # fmt: skip
        if src.ranks != st.world:
            raise InputError([Problem(src.path, "job.load_checkpoint", f"{src.ranks} rank folders for {st.world} "
                                      f"ranks ({lay}) with job.auto_trans_ckpt=false", "drop job.auto_trans_ckpt=false "
                                      "so the checkpoint is resharded, or give shards saved with this layout")])  # fmt: skip
        return CheckpointLoad(path, src.layout, src.ranks, True, "per-rank", False, str(src.root),
                              f"job.auto_trans_ckpt=false: rank R loads rank_R/ of {src.root} (saved with {lay})")  # fmt: skip
    case = "reshard-offline" if offline else "reshard"
    how = ("more than 8 devices without shared output: the offline flow reshards it before the launch "
           "(strategy run, gather, transform, push)") if offline else "MindFormers reshards it on load (auto_trans_ckpt)"  # fmt: skip
    if src is None:
        return CheckpointLoad(path, UNKNOWN, 0, True, case, True, path,
                              f"the layout {lay} shards weights and {path} is not on this machine: {how}")  # fmt: skip
    if src.layout == "shards":
        return CheckpointLoad(path, src.layout, src.ranks, True, case, True, str(src.root),
                              f"the layout {lay} shards weights and {src.root} holds {src.ranks} shards (strategy "
                              f"files in {src.strategy}): {how}; if they were saved with exactly this layout, "
                              "--set job.auto_trans_ckpt=false loads them as they are", strategy=src.strategy)  # fmt: skip
    return CheckpointLoad(path, src.layout, src.ranks, True, case, True, str(src.file),
                          f"the layout {lay} shards weights: {how} from {_what(src)}", as_rank_folder=not offline)  # fmt: skip


def checkpoint_load(
    task: str, st: Any, accelerator: bool, opts: Any, offline: bool
) -> Optional[CheckpointLoad]:
    """How ``opts.load_checkpoint`` is loaded by ``task`` on layout ``st`` (None: no checkpoint).
    ``offline``: a reshard here would go through the offline flow (see the module docstring)."""
    path = opts.load_checkpoint
    if not path:
        return None
    from orchestrator.checkpoint.source import read_source  # not at import: reshard imports the planner

    src = read_source(path)
    explicit = opts.auto_trans_ckpt
    if not st.training:
        return _package(task, path, src, explicit)
    lay = _layout(st, accelerator)
    if not shards_weights(st, accelerator):
        return _unsharded(st, lay, path, src, explicit)
    return _sharded(st, lay, path, src, explicit, offline)
