"""Staging: everything a node needs before its ranks start, to every node in parallel.

Per node: the model code (a deterministic tarball of the ``iflytekspark`` package, unpacked once into
``<workdir>/code/<sha256>/``: a node that already holds that hash gets nothing), the agent, the
rendered YAML, the rank table (rank-table mode), the job's inputs (datasets, tokenizer, checkpoint:
the plan's ``input`` transfers) and the agent's job spec.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from orchestrator.launch import agent_rpc
from orchestrator.launch.spec import code_dir, node_spec, spec_path
from orchestrator.plan.model import NodePlan, Plan
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

# Move the logs of an earlier run of the same plan aside (<log>.<mtime>), so each job's logs are its own.
_ROTATE = """import os, sys
for log in sys.argv[1:]:
    if os.path.exists(log):
        os.replace(log, "%s.%d" % (log, int(os.path.getmtime(log))))
"""

# A later attempt of a job: move the agent's record of the attempt before aside (<job>.attempt-<n>), so
# the agent starts the job id again; the rank logs stay and the new attempt appends to them.
_NEXT_ATTEMPT = """import os, sys
folder = sys.argv[1]
if os.path.isdir(folder):
    n = 1
    while os.path.exists("%s.attempt-%d" % (folder, n)):
        n += 1
    os.rename(folder, "%s.attempt-%d" % (folder, n))
"""


@dataclass(frozen=True)
class CodeBundle:
    sha256: str
    data: bytes


@dataclass(frozen=True)
class StageReport:
    host: str
    code_dir: str
    code_cached: bool
    files: int
    bytes: int


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


def _inputs(plan: Plan, host: str) -> list[tuple[Path, str]]:
    """(controller file, node path) of every input file the plan sends to ``host`` (folders walked)."""
    out = []
    for x in plan.transfers:
        if x.host != host or x.kind != "input":
            continue
        src = Path(x.source)
        if src.is_dir():
            out += [
                (f, f"{x.dest}/{f.relative_to(src).as_posix()}")
                for f in sorted(src.rglob("*"))
                if f.is_file()
            ]
        else:
            out.append((src, x.dest))
    return out


def stage_node(
    t: Transport, plan: Plan, node: NodePlan, job_id: str, workdir: str, fresh: bool = True
) -> StageReport:
    """Put everything ``node`` needs on it (see the module docstring); the spec goes last.
    ``fresh``: the job's first attempt (earlier jobs' logs are moved aside); else a later attempt."""
    code, cached = ship_code(t, node.python, workdir, code_bundle())
    files: list[tuple[bytes, str, int]] = [
        (agent_rpc.AGENT_FILE.read_bytes(), agent_rpc.agent_path(workdir), 0o755),
        (node.yaml_text.encode(), f"{node.job_dir}/config/{node.yaml_name}", 0o644),
    ]
    if plan.launch_mode == "rank_table":
        files.append((plan.rank_table_text.encode(), f"{node.job_dir}/rank_table.json", 0o644))
    for data, dest, mode in files:
        t.put_bytes(data, dest, mode=mode)
    if fresh:
        t.run([node.python, "-c", _ROTATE, *[x.stdout for x in node.launches]], timeout=30)
    else:
        t.run(
            [node.python, "-c", _NEXT_ATTEMPT, f"{agent_rpc.agent_workdir(workdir)}/jobs/{job_id}"],
            timeout=30,
        )
    sent = sum(len(f[0]) for f in files)
    inputs = _inputs(plan, node.host)
    for src, dest in inputs:
        t.put(src, dest)
        sent += src.stat().st_size
    spec = node_spec(plan, node, job_id, workdir, code).to_json()
    t.put_bytes(spec.encode(), spec_path(workdir, job_id), mode=0o600)
    return StageReport(node.host, code, cached, len(files) + len(inputs) + 1, sent + len(spec))


def stage_all(fan: Callable[[Callable[[Transport], StageReport]], GroupResult], plan: Plan, job_id: str,
              workdirs: dict[str, str], fresh: bool = True) -> GroupResult:  # fmt: skip
    """Stage every node of ``plan`` through ``fan`` (``JobNodes.fan``: all nodes in parallel)."""
    code_bundle()  # build once, before the threads

    def one(t: Transport) -> StageReport:
        return stage_node(t, plan, plan.node(t.host), job_id, workdirs[t.host], fresh)

    return fan(one)
