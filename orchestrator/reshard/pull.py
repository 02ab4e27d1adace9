"""`checkpoint pull`: gather a finished job's per-rank checkpoints and strategy files to the controller.

From every node in parallel: list ``<output_dir>/checkpoint/rank_*/`` and ``<output_dir>/strategy/``,
choose the newest step that every rank saved (or ``step``), hash those files on the nodes, fetch them
(skipping files already here and identical) into ``OUT/checkpoint/rank_<R>/`` and ``OUT/strategy/``,
and write ``OUT/pull.json``. Each rank's files come from the node that ran it (shared storage shows
them on every node).
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from orchestrator.reshard import nodefiles
from orchestrator.reshard.nodefiles import RemoteFile
from orchestrator.reshard.steps import Selection, select_step
from orchestrator.reshard.strategy_files import CHECKPOINT_DIR, STRATEGY_DIR, node_output_dir, rank_of
from orchestrator.transport import TransportPool, fan_out
from orchestrator.transport.files import write_atomic


@dataclass(frozen=True)
class Pulled:
    """What ``pull`` left in ``out``."""

    out: Path
    job_id: str
    selection: Selection
    files: tuple[RemoteFile, ...]  # the files pulled (or found identical here)
    fetched: int
    bytes: int

    @property
    def skipped(self) -> int:
        return len(self.files) - self.fetched


def _rank(f: RemoteFile) -> Optional[int]:
    """Rank of a listed file: ``checkpoint/rank_<R>/...`` or ``strategy/ckpt_strategy_rank_<R>.ckpt``."""
    head, _, rest = f.rel.partition("/")
    if head == CHECKPOINT_DIR:
        folder = rest.split("/", 1)[0]
        return int(folder[5:]) if folder[5:].isdigit() else None
    return rank_of(f.name) if head == STRATEGY_DIR else None


def _owned(listed: dict[str, list[RemoteFile]], owner: dict[int, str]) -> list[RemoteFile]:
    """One copy per file (by ``rel``): the one on the node that ran its rank, else the first seen."""
    chosen: dict[str, RemoteFile] = {}
    for host, files in listed.items():
        for f in files:
            rank = _rank(f)
            if rank is None:
                continue
            if f.rel not in chosen or owner.get(rank) == host:
                chosen[f.rel] = f
    return sorted(chosen.values(), key=lambda f: f.rel)


def select_files(
    files: list[RemoteFile], world: int, where: str, step: Optional[str]
) -> tuple[Selection, list[RemoteFile]]:
    """The selected step's checkpoint of every rank plus every rank's strategy file (when present)."""
    names: dict[int, list[str]] = {}
    for f in files:
        if f.rel.startswith(CHECKPOINT_DIR + "/"):
            names.setdefault(_rank(f), []).append(f.name)  # type: ignore[arg-type]
    sel = select_step(names, world, where, step)
    want = {f"{CHECKPOINT_DIR}/rank_{r}/{name}" for r, name in sel.files}
    strategies = [f for f in files if f.rel.startswith(STRATEGY_DIR + "/") and (_rank(f) or 0) < world]
    return sel, [f for f in files if f.rel in want] + strategies


def _listing(plan: Any, specs: dict[str, Any], pool: TransportPool) -> list[RemoteFile]:
    planned = {n.host: n for n in plan.nodes}
    listed = fan_out([specs[h] for h in planned], lambda t: nodefiles.list_output(
        t, specs[t.host].python, node_output_dir(planned[t.host])), pool=pool).raise_on_failure()  # fmt: skip
    return _owned(listed.results, {r: n.host for n in plan.nodes for r in n.ranks})


def _fetch_all(specs: dict[str, Any], by_host: dict[str, list[RemoteFile]], out: Path, verify: bool,
               pool: TransportPool) -> tuple[dict[str, list[RemoteFile]], dict[str, bool]]:  # fmt: skip
    """Fetch every host's files (hashed on the node first when ``verify``); ``{rel: bytes moved}``."""
    targets = [specs[h] for h in by_host]
    if verify:
        hashed = fan_out(
            targets, lambda t: nodefiles.hash_files(t, specs[t.host].python, by_host[t.host]), pool=pool
        )
        by_host = dict(hashed.raise_on_failure().results)
    moved = fan_out(
        targets, lambda t: [nodefiles.fetch(t, f, out / f.rel) for f in by_host[t.host]], pool=pool
    )
    moved.raise_on_failure()
    return by_host, {f.rel: x for h, fs in by_host.items() for f, x in zip(fs, moved.results[h])}


def _split(plan: Any, files: list[RemoteFile]) -> dict[str, list[RemoteFile]]:
    return {n.host: [f for f in files if f.host == n.host] for n in plan.nodes}


def pull_strategies(
    plan: Any, nodes: Any, out: Path, pool: Optional[TransportPool] = None
) -> dict[int, Path]:
    """Gather every rank's ``ckpt_strategy_rank_<R>.ckpt`` of ``plan`` into ``out/strategy/``."""
    specs = {n.host: n for n in nodes}
    with TransportPool() if pool is None else nullcontext(pool) as p:
        files = [f for f in _listing(plan, specs, p) if f.rel.startswith(STRATEGY_DIR + "/")]
        files = [f for f in files if (_rank(f) or 0) < plan.world_size]
        _fetch_all(specs, _split(plan, files), out, True, p)
    return {_rank(f): out / f.rel for f in files}  # type: ignore[misc]


def pull(plan: Any, nodes: Any, out: Path, job_id: str, step: Optional[str] = None, verify: bool = True,
         pool: Optional[TransportPool] = None) -> Pulled:  # fmt: skip
    """Pull ``plan``'s checkpoints from ``nodes`` (NodeSpecs by host) into ``out`` (see module doc)."""
    specs = {n.host: n for n in nodes}
    with TransportPool() if pool is None else nullcontext(pool) as p:
        sel, files = select_files(_listing(plan, specs, p), plan.world_size, f"job {job_id}", step)
        by_host, flags = _fetch_all(specs, _split(plan, files), out, verify, p)
    files = sorted((f for fs in by_host.values() for f in fs), key=lambda f: f.rel)
    result = Pulled(
        out, job_id, sel, tuple(files), sum(flags.values()), sum(f.size for f in files if flags[f.rel])
    )
    write_manifest(result)
    return result


def write_manifest(p: Pulled) -> Path:
    data = {
        "job": p.job_id,
        "step": p.selection.tag,
        "world": len(p.selection.files),
        "files": [{"rel": f.rel, "host": f.host, "size": f.size, "sha256": f.sha256} for f in p.files],
    }
    path = p.out / "pull.json"
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))
    return path
