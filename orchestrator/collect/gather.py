"""Fetching one job's files from every node in parallel: one tar stream per node, unpacked locally.

``node_request`` says what to take from a node (from the job record and, when present, the plan
copy); ``node_pack.py`` runs there, read-only, and streams the archive on stdout; ``fetch_node``
copies the stream piece by piece into a file beside the host folder (never whole in memory), then
unpacks it into ``<out>/<job>/<host>/`` (``layout``). A node that cannot be reached is reported, the
others are still collected.
"""

from __future__ import annotations

import io
import json
import posixpath
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from orchestrator.agent.node import devices as node_devices
from orchestrator.collect import layout, node_pack
from orchestrator.errors import TransportError
from orchestrator.inventory.model import NodeSpec
from orchestrator.jobs.state import JobRecord, ProcessRef
from orchestrator.plan.model import NodePlan
from orchestrator.transport import Stream, Transport

NODE_SOURCE = Path(node_pack.__file__).read_text(encoding="utf-8")
PLOG_ENV = "ASCEND_PROCESS_LOG_PATH"
HCCN_QUERIES = ("link", "ip", "net_health")
TOOLS = ("npu-smi", "hccn_tool")  # looked for on PATH, then where Ascend installs them (node_devices)
MAX_FILE_BYTES = node_pack.DEFAULT_FILE  # a bigger file is cut to its last bytes
MAX_NODE_BYTES = (
    node_pack.DEFAULT_TOTAL
)  # the files packed from one node; what would pass it is left out and listed
READ_CHUNK = 1 << 20
MAX_NOISE = 1 << 20  # shell start-up output tolerated before the archive's marker line


@dataclass(frozen=True)
class NodeCollect:
    """What was collected from one node (``dir`` None when the node could not be collected)."""

    host: str
    dir: Optional[Path]
    error: str = ""
    files: tuple[tuple[str, str], ...] = ()  # (node path, path under ``dir``)
    archive_bytes: int = 0
    truncated: tuple[str, ...] = ()  # node paths cut to their last bytes
    unreadable: tuple[str, ...] = ()  # "<node path>: <why>"
    tools_missing: tuple[str, ...] = ()  # tools not installed on the node (npu-smi, hccn_tool)
    skipped_old: int = 0  # files outside the job's run window (earlier jobs' logs)
    left_out: tuple[str, ...] = ()  # "<node path> (<size> bytes)": over the node's total cap
    max_node_bytes: int = 0  # that cap

    @property
    def ok(self) -> bool:
        return self.dir is not None

    def local(self, node_path: str) -> Optional[Path]:
        """Where the node file ``node_path`` was put locally, if it was collected."""
        arc = dict(self.files).get(node_path)
        return self.dir / arc if self.dir is not None and arc else None


def _under(path: str, root: str) -> bool:
    return posixpath.commonpath([path, root]) == root


def _job_folders(procs: list[ProcessRef], plan_node: Optional[NodePlan]) -> tuple[str, str]:
    """(job folder, log folder) on the node: from the plan, else the folder holding the job's logs."""
    if plan_node is not None:
        return plan_node.job_dir, f"{plan_node.job_dir}/output/log"
    common = posixpath.commonpath([posixpath.dirname(p.log) for p in procs] or ["/"])
    return common, common


def node_request(record: JobRecord, spec: NodeSpec, plan_node: Optional[NodePlan], max_file_bytes: int = MAX_FILE_BYTES,
                 max_node_bytes: int = MAX_NODE_BYTES) -> dict[str, Any]:  # fmt: skip
    """The JSON request ``node_pack`` answers for ``spec``'s node."""
    host, job_id = spec.host, record.job_id
    agent_dir = record.agent(host)[1]
    procs = [p for p in record.processes if p.host == host]
    job_dir, log_root = _job_folders(procs, plan_node)
    entries = [
        {"arc": layout.LOGS, "path": log_root, "window": True},
        {"arc": layout.CONFIG, "path": f"{job_dir}/config", "optional": True},
        {"arc": layout.RANK_TABLE, "path": f"{job_dir}/{layout.RANK_TABLE}", "optional": True},
        {"arc": layout.AGENT, "path": f"{agent_dir}/jobs/{job_id}"},
        {"arc": f"{layout.AGENT}/launch-spec.json", "path": f"{agent_dir}/specs/{job_id}.json", "optional": True},
    ]  # fmt: skip
    for p in procs:  # a rank log planned outside the log folder: its folder, time-windowed
        if not _under(p.log, log_root):
            extra = {"arc": f"{layout.LOGS}-extra/{p.name}", "path": posixpath.dirname(p.log), "window": True}
            entries.append(extra)
    envs = [dict(x.env) for x in plan_node.launches] if plan_node else []
    plogs = sorted({e[PLOG_ENV] for e in envs if e.get(PLOG_ENV)})
    for i, path in enumerate(p for p in plogs if not _under(p, log_root)):
        entries.append({"arc": f"{layout.PLOG}/{i}", "path": path, "window": True, "optional": True})
    commands = [["npu-smi", "info"]] + [
        ["hccn_tool", "-i", str(d), f"-{q}", "-g"] for d in spec.devices for q in HCCN_QUERIES
    ]
    return {
        "entries": entries,
        "plog_default": not envs or any(not e.get(PLOG_ENV) for e in envs),
        "state": f"{agent_dir}/jobs/{job_id}/state.json",
        "since": record.created,
        "commands": [{"arc": layout.snapshot_name(c), "argv": c} for c in commands],
        "tool_places": {t: node_devices.tool_places(t, getattr(spec, "ascend_root", None)) for t in TOOLS},
        "max_file_bytes": max_file_bytes,
        "max_total_bytes": max_node_bytes,
        "disks": [job_dir, agent_dir],
    }


def receive_archive(stream: Stream, path: Path, timeout: float, limit: int) -> int:
    """Copy the archive after ``node_pack``'s marker line from ``stream`` into ``path``, piece by piece;
    its size. ValueError when no marker comes or the archive passes ``limit`` bytes."""
    marker = f"\n{node_pack.BEGIN}\n".encode()
    head = bytearray(b"\n")
    while (at := head.find(marker)) < 0:
        chunk = stream.read(READ_CHUNK, timeout)
        if not chunk:
            raise NoArchive("no archive in the node's answer")
        if len(head) > MAX_NOISE:
            raise ValueError(f"no archive marker in the first {MAX_NOISE} bytes of the node's answer")
        head += chunk
    size = 0
    with open(path, "wb") as f:
        chunk = bytes(head[at + len(marker) :])
        while chunk:
            size += len(chunk)
            if size > limit:
                raise ValueError(f"the node's archive passed {limit} bytes: stopped")
            f.write(chunk)
            chunk = stream.read(READ_CHUNK, timeout)
    return size


def unpack(archive: Union[Path, bytes], dest: Path) -> dict[str, Any]:
    """Extract the archive (a file, or bytes) into ``dest`` (replacing an earlier collection there);
    its manifest."""
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        src = io.BytesIO(archive) if isinstance(archive, bytes) else None
        with tarfile.open(name=None if src else archive, fileobj=src, mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")  # no absolute paths, no '..', no links out
        manifest = json.loads((tmp / layout.MANIFEST).read_text(encoding="utf-8"))
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


class NoArchive(ValueError):
    """The node's output ended without the archive's marker line (its stderr says why)."""


def _stream_to_file(t: Transport, python: str, request: dict[str, Any], archive: Path, timeout: float) -> int:
    """Run ``node_pack`` and store its archive in ``archive`` (ValueError naming the node's failure); its size."""
    limit = int(request.get("max_total_bytes") or MAX_NODE_BYTES) + (256 << 20)  # tar and gzip overhead
    with t.open_stream([python, "-c", NODE_SOURCE, json.dumps(request, sort_keys=True)], bulk=True) as stream:
        try:
            size = receive_archive(stream, archive, timeout, limit)
        except NoArchive as exc:
            end = stream.wait(timeout)  # its output ended: nothing more to read
            raise NoArchive(f"{exc} (exited {end.exit_code}): {_tail(end.stderr)}") from None
        end = stream.wait(timeout)
        if end.exit_code != 0:
            raise ValueError(f"exited {end.exit_code}: {_tail(end.stderr)}")
    return size


def _tail(stderr: bytes) -> str:
    return " | ".join(stderr.decode(errors="replace").strip().splitlines()[-3:]) or "no stderr"


def fetch_node(
    t: Transport, python: str, request: dict[str, Any], dest: Path, timeout: float = 600
) -> NodeCollect:
    """Run ``node_pack`` on the node behind ``t``, stream its archive to a file, unpack it into ``dest``."""
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    archive = dest.parent / f".{dest.name}.tar.gz"
    try:
        size = _stream_to_file(t, python, request, archive, timeout)
        manifest = unpack(archive, dest)
    except (ValueError, tarfile.TarError, OSError, TransportError) as exc:
        return NodeCollect(t.host, None, f"collecting failed: {exc}")
    finally:
        archive.unlink(missing_ok=True)
    files, tools = tuple((f["path"], f["arc"]) for f in manifest["files"]), manifest["commands"]
    return NodeCollect(
        host=t.host, dir=dest, files=files, archive_bytes=size,
        truncated=tuple(f["path"] for f in manifest["files"] if f["truncated"]),
        unreadable=tuple(f"{e['path']}: {e['error']}" for e in manifest["errors"])
        + tuple(f"{' '.join(c['argv'])}: {c['error']}" for c in tools if c["error"] not in ("", "not found")),
        tools_missing=tuple(sorted({c["argv"][0] for c in tools if c["error"] == "not found"})),
        skipped_old=int(manifest["skipped_outside_window"]),
        left_out=tuple(f"{e['path']} ({e['size']} bytes)" for e in manifest.get("left_out", [])),
        max_node_bytes=int(manifest.get("max_total_bytes", 0)),
    )  # fmt: skip


def gather(record: JobRecord, plans: dict[str, NodePlan], root: Path, fan: Any, timeout: float = 600,
           max_node_bytes: int = MAX_NODE_BYTES) -> dict[str, NodeCollect]:  # fmt: skip
    """Collect every node of ``record`` at once through ``fan`` (``JobNodes.fan``); per-host outcomes.

    ``plans`` maps host -> that node's plan (empty when the job has no plan copy).
    """
    specs = {n.host: n for n in record.nodes}

    def one(t: Transport) -> NodeCollect:
        spec = specs[t.host]
        request = node_request(record, spec, plans.get(t.host), max_node_bytes=max_node_bytes)
        return fetch_node(t, spec.python, request, layout.host_dir(root, t.host), timeout)

    res = fan(one)
    out = dict(res.results)
    out.update({h: NodeCollect(h, None, str(e).splitlines()[0]) for h, e in res.failures.items()})
    return {h: out[h] for h in specs}
