"""Staging: everything a node needs before its ranks start, to every node in parallel.

Per node: the model code (a deterministic tarball of the ``iflytekspark`` package, unpacked once into
``<workdir>/code/<sha256>/``: a node that already holds that hash gets nothing), the agent (one zipapp,
written only when the node lacks that build: ``agent_rpc.install_agent``), the plan's
generated files at the paths its transfers name (rendered YAML, rank table in rank-table mode, each
process's env file, ``commands.sh``), ``<job dir>/env/code_dir`` (the code folder, which
``commands.sh`` puts first on PYTHONPATH) and the agent's job spec (with the node's CANN environment).

The job's inputs (datasets, tokenizer, checkpoint: the plan's ``input`` transfers): the agent's
``stage`` first says whether the node holds them all as they are (size, mtime, the hash its cache
knows: the push's own check), so a launch whose inputs are there opens no push session; the nodes
that lack some get them in one push (``orchestrator.transfer``) after staging and are started then:
a node already holding an identical file gets nothing, half-sent files resume, nodes relay to each
other, and a destination on verified shared storage is written once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import tarfile
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from orchestrator.agent.client import StartResult, start_from
from orchestrator.errors import OrchestrateError, TransportError
from orchestrator.launch import agent_rpc
from orchestrator.launch.nodes import JobNodes
from orchestrator.launch.spec import code_dir, node_spec, spec_path
from orchestrator.plan.model import NodePlan, Plan
from orchestrator.plan.plan_io import commands_script, env_script
from orchestrator.plan.transfers import CODE_DIR_FILE
from orchestrator.transfer import PushOptions, PushResult, Target, push
from orchestrator.transfer.remote import scan_conf
from orchestrator.transfer.targets import targets_from_transfers
from orchestrator.transport import GroupResult, Transport

# Unpack <tar> into <dest> atomically (temp folder, then rename), run with the node's python.
_UNPACK = """import os, shutil, sys, tarfile
tar, dest = sys.argv[1], sys.argv[2]
if not os.path.exists(os.path.join(dest, ".complete")):
    tmp = dest + ".tmp-" + str(os.getpid())
    with tarfile.open(tar) as t:
        t.extractall(tmp)
    open(os.path.join(tmp, ".complete"), "w").close()
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(tmp, dest)
os.remove(tar)
"""


@dataclass(frozen=True)
class CodeBundle:
    sha256: str
    data: bytes


@dataclass(frozen=True)
class InputFigures:
    """The job's inputs on one node after their push: files, bytes written there, bytes it already held."""

    files: int = 0
    sent: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class StageReport:
    """What staging put on one node: ``files``/``bytes`` count everything written, inputs included."""

    host: str
    code_dir: str
    code_cached: bool
    files: int
    bytes: int
    inputs: InputFigures = InputFigures()
    started: Optional[StartResult] = None  # the job's start, when staging did it in the same round trip
    inputs_ready: bool = True  # the node held every input as it is (else they are pushed, then it starts)


def _package_dir(name: str = "iflytekspark") -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the {name} package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=2)
def code_bundle(name: str = "iflytekspark") -> CodeBundle:
    """The package as a reproducible .tar.gz (sorted, zero mtimes/owners) and the hash of its files."""
    root = _package_dir(name)
    files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and p.suffix not in (".pyc", ".pyo"))  # fmt: skip
    digest, buf = hashlib.sha256(), io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        for path in files:
            rel = f"{name}/{path.relative_to(root).as_posix()}"
            data = path.read_bytes()
            digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return CodeBundle(digest.hexdigest(), buf.getvalue())


def ship_code(t: Transport, python: str, workdir: str, bundle: CodeBundle) -> tuple[str, bool]:
    """Make ``<workdir>/code/<sha>/`` exist on the node; (folder, True if it was already there)."""
    dest = code_dir(workdir, bundle.sha256)
    if t.run(["test", "-f", f"{dest}/.complete"], check=False, timeout=15).exit_code == 0:
        return dest, True
    tar = f"{dest}.tar.gz"
    t.put_bytes(bundle.data, tar, mode=0o600)
    t.run([python, "-c", _UNPACK, tar, dest], timeout=120)
    return dest, False


def input_targets(plan: Plan, nodes: Sequence[Any]) -> list[Target]:
    """Push targets of the plan's ``input`` transfers: one per node and destination folder (a
    MindRecord file and its ``.db`` index, two transfers, land in one folder: one target)."""
    merged: dict[tuple[str, str], Target] = {}
    for t in targets_from_transfers(plan.transfers, nodes):
        old = merged.get((t.host, t.dest))
        if old is not None:
            items = {i.entry.rel: i for i in (*old.items, *t.items)}
            t = replace(old, items=tuple(items.values()))
        merged[(t.host, t.dest)] = t
    return list(merged.values())


def figures(
    targets: Sequence[Target], result: PushResult
) -> tuple[dict[str, InputFigures], dict[str, Exception]]:
    """Per host: the input figures of ``result``, and an error for each host that did not get every file."""
    total = {(t.host, t.dest): sum(i.entry.size for i in t.items) for t in targets}
    out: dict[str, InputFigures] = {}
    errors: dict[str, Exception] = {}
    for r in result.nodes:
        size = total.get((r.host, r.dest), 0)
        was = out.get(r.host, InputFigures())
        out[r.host] = InputFigures(was.files + r.files, was.sent + r.bytes_written,
                                   was.skipped + max(0, size - r.bytes_written))  # fmt: skip
        if not r.ok:
            errors.setdefault(r.host, TransportError(f"{r.host}: job inputs to {r.dest}: {r.error}"))
    return out, errors


def push_inputs(nodes: JobNodes, plan: Plan, shared_paths: Sequence[str] = (), progress: bool = False,
                hosts: Optional[Sequence[str]] = None) -> tuple[dict[str, InputFigures], dict[str, Exception]]:  # fmt: skip
    """Push the plan's inputs to every node (or those of ``hosts``) at once over ``nodes``' connections
    (see the module docstring); the figures per host, and the hosts that did not get them with why."""
    targets = [t for t in input_targets(plan, nodes.nodes) if hosts is None or t.host in hosts]
    if not targets:
        return {}, {}
    opts = PushOptions(mode="auto", shared_paths=tuple(shared_paths), progress=progress)
    try:
        result = push(targets, opts, pool=nodes.pool)
    except (OSError, OrchestrateError) as exc:
        return {}, {t.host: exc for t in targets}
    return figures(targets, result)


def generated_files(plan: Plan, node: NodePlan) -> list[tuple[bytes, str, int]]:
    """(content, node path, mode) of every ``generated`` transfer of ``node`` in the plan."""
    base = f"nodes/{node.host}"
    content = {f"{base}/{node.yaml_name}": node.yaml_text, "rank_table.json": plan.rank_table_text,
               f"{base}/commands.sh": commands_script(node)}  # fmt: skip
    content.update({f"{base}/env_{x.name}.sh": env_script(x) for x in node.launches})
    return [(content[x.source].encode(), x.dest, x.mode)
            for x in plan.transfers if x.host == node.host and x.kind == "generated"]  # fmt: skip


def stage_node(t: Transport, plan: Plan, node: NodePlan, job_id: str, workdir: str, fresh: bool = True,
               node_env: Mapping[str, str] = {}, start: Optional[bool] = None,
               inputs: Sequence[Target] = (), session: Optional[agent_rpc.StagingSession] = None) -> StageReport:  # fmt: skip
    """Put everything small ``node`` needs on it (see the module docstring): one round trip when the
    node already holds the agent and the code (the agent's ``stage`` verb writes the small files from
    one bundle, the spec last, and says whether the code is there and whether the node holds the job's
    ``inputs``, its push targets), else the missing code after it (the inputs are the caller's).
    ``fresh``: the job's first attempt (earlier jobs' logs are moved aside); else a later attempt.
    ``node_env``: what the node's CANN scripts set (``launch.node_env``), for every process.
    ``start`` (not None: its value is ``--force``): the agent also starts the job in the same round
    trip when the code and inputs are there (``started`` in the report; None when the code had to be
    shipped or inputs pushed first: the caller starts it). A refusal to start raises as ``start``'s would.
    ``session``: the node's agent waiting since its preflight, which takes the bundle (no new session)."""
    code_files = code_bundle()
    code = code_dir(workdir, code_files.sha256)
    spec = node_spec(plan, node, job_id, workdir, code, node_env).to_json()
    files: list[tuple[bytes, str, int]] = [
        *generated_files(plan, node),
        (f"{code}\n".encode(), f"{node.job_dir}/{CODE_DIR_FILE}", 0o644),
        (spec.encode(), spec_path(workdir, job_id), 0o600),  # last: the agent starts from it
    ]
    bundle = {
        "files": [[dest, mode, data.decode()] for data, dest, mode in files],
        "rotate": [x.stdout for x in node.launches] if fresh else [],
        "next_attempt": None if fresh else f"{agent_rpc.agent_workdir(workdir)}/jobs/{job_id}",
        "check": [f"{code}/.complete"],
        "inputs": [scan_conf(x) for x in inputs],
        "start": None if start is None else {"spec": spec_path(workdir, job_id), "force": start},
    }
    data = json.dumps(bundle).encode()
    answer = session.stage(data) if session is not None else agent_rpc.stage(t, node.python, workdir, data)
    staged = answer.get("staged", answer)
    cached = bool(staged["present"][f"{code}/.complete"])
    if not cached:
        ship_code(t, node.python, workdir, code_files)
    started = start_from(answer) if answer.get("started") else None
    ready = bool(staged.get("inputs_ready", not inputs))
    held = InputFigures(
        sum(len(x.items) for x in inputs), 0, sum(i.entry.size for x in inputs for i in x.items)
    )
    return StageReport(node.host, code, cached, len(files), sum(len(f[0]) for f in files),
                       inputs=held if ready else InputFigures(), started=started, inputs_ready=ready)  # fmt: skip


def stage_all(nodes: JobNodes, plan: Plan, job_id: str, fresh: bool = True, shared_paths: Sequence[str] = (),
              progress: bool = False, node_envs: Mapping[str, Mapping[str, str]] = {},
              start: Optional[bool] = None,
              sessions: Optional[Mapping[str, agent_rpc.StagingSession]] = None) -> GroupResult[StageReport]:  # fmt: skip
    """Stage every node of ``plan`` at once (``stage_node``; ``start``: and start it there in the same
    round trip when it holds the code and the inputs), then push the inputs to the nodes that lack some,
    in one push; those are started by the caller. A node whose inputs failed is a failure of the
    result. ``node_envs``: each host's CANN environment (``launch.node_env``); ``sessions``: the nodes'
    agents waiting since their preflight (``agent_rpc.StagingSession``), which take the bundle."""
    code_bundle()  # build once, before the threads
    targets: dict[str, list[Target]] = {}
    for x in input_targets(plan, nodes.nodes):
        targets.setdefault(x.host, []).append(x)

    def one(t: Transport) -> StageReport:
        return stage_node(t, plan, plan.node(t.host), job_id, nodes.node(t.host).workdir, fresh,
                          node_envs.get(t.host, {}), start, targets.get(t.host, ()),
                          (sessions or {}).get(t.host))  # fmt: skip

    staged = nodes.fan(one)
    lacking = [h for h, r in staged.results.items() if not r.inputs_ready]
    got, failed = push_inputs(nodes, plan, shared_paths, progress, lacking) if lacking else ({}, {})
    results = {}
    for h, r in staged.results.items():
        x = got.get(h, r.inputs)
        results[h] = replace(r, files=r.files + x.files, bytes=r.bytes + x.sent, inputs=x)
    return GroupResult(nodes.hosts, {h: r for h, r in results.items() if h not in failed},
                       {**staged.failures, **failed})  # fmt: skip


def input_summary(reports: Sequence[StageReport]) -> Optional[str]:
    """``inputs: 12.0 MiB sent, 3.0 MiB already on the nodes`` (None without inputs)."""
    if not any(r.inputs.files for r in reports):
        return None
    sent, skipped = sum(r.inputs.sent for r in reports), sum(r.inputs.skipped for r in reports)
    return f"inputs: {_size(sent)} sent, {_size(skipped)} already on the nodes"


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB" if n >= 2**10 else f"{n} B"
