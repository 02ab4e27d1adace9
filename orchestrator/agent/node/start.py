"""``start``: check what a job needs on this node is free, write its spec, start its supervisor (node side)."""

from __future__ import annotations

import argparse
import fcntl
import os
from typing import Any, Dict, Iterable, List, Optional

from orchestrator.agent.node import devices as npus
from orchestrator.agent.node.base import (
    AGENT_VERSION,
    ENV_JOB,
    EXIT_BUSY,
    EXIT_SPAWN,
    EXIT_USAGE,
    RELEASE_WAIT_S,
    AgentError,
    Json,
    all_states,
    job_dir,
    read_json,
    write_json,
)
from orchestrator.agent.node.procs import is_alive, proc_marks, proc_read, scan_marked
from orchestrator.agent.node.stop import stop_job
from orchestrator.agent.node.supervisor import daemonize


def find_conflicts(
    workdir: str, devices: Iterable[int], info: Any = None, ports: Iterable[int] = ()
) -> List[Json]:
    """Processes in the way of a job on ``devices`` (none: the whole node) reserving ``ports``: those of
    jobs recorded here whose spec holds one of them (``record``, with the ``npus`` and ``ports`` they take:
    --force stops them), marked by an agent for a job not recorded here and run by our user
    (``environment``), and live ones npu-smi (``info``) lists on ``devices`` that are neither (``npu-smi``:
    never stopped by us). Jobs of ours on other NPUs and ports are no conflict."""
    found: Dict[int, Json] = {}
    states, need = all_states(workdir), npus.holds({"devices": list(devices), "ports": list(ports)})
    clash: Dict[str, Json] = {}  # job id -> what of ``need`` it holds
    for st in states:
        taken = npus.overlap(
            need, npus.holds(read_json(os.path.join(job_dir(workdir, st["job_id"]), "spec.json")))
        )
        if taken is None:
            continue
        clash[st["job_id"]] = taken
        sup = {"name": "supervisor", "pid": st["supervisor_pid"], "start_ticks": st.get("supervisor_start")}
        for r in [sup] + st["processes"]:
            if is_alive(r["pid"], r["start_ticks"]):
                found[r["pid"]] = dict(taken, source="record", job=st["job_id"], name=r["name"], pid=r["pid"],
                                       pgid=r.get("pgid"), cmd=" ".join(proc_read(r["pid"], "cmdline")))  # fmt: skip
    recorded = {st["job_id"] for st in states}
    for p in scan_marked():
        if p["job"] in clash:
            found.setdefault(p["pid"], dict(p, source="record", **clash[p["job"]]))
        elif p["job"] not in recorded and npus.uid_of(p["pid"]) == os.getuid():
            found.setdefault(p["pid"], dict(p, source="environment"))
    for h in npus.holders(info, devices) if info is not None else []:
        if h["state"] == "running" and h["local_pid"] not in found:
            job = proc_marks(h["local_pid"]).get(ENV_JOB)
            found[h["local_pid"]] = dict(h, source="npu-smi", job=job, npu=h["device"])
            if (
                job in recorded
            ):  # a job of ours on a needed NPU its spec does not name: in the way all the same
                found[h["local_pid"]].update(source="record", npus=[h["device"]], ports=[])
    return sorted(found.values(), key=lambda c: c["pid"])


def cmd_start(args: argparse.Namespace) -> Json:
    spec = read_json(args.spec)  # written by the controller from typed objects (agent/client.py)
    if not isinstance(spec, dict) or not spec.get("job_id") or not spec.get("ranks"):
        raise AgentError(EXIT_USAGE, f"{args.spec}: not a job spec (needs job_id and ranks)")
    if str(spec.get("agent_version")) != AGENT_VERSION:
        message = f"spec is for agent {spec.get('agent_version')}, this is {AGENT_VERSION}"
        raise AgentError(EXIT_USAGE, message)
    workdir, job, grace = spec.get("work_dir") or args.workdir, spec["job_id"], float(spec.get("grace_s", 10))
    workdir = spec["work_dir"] = os.path.abspath(workdir)  # the supervisor runs in the job folder
    for p in spec["ranks"] + ([spec["scheduler"]] if spec.get("scheduler") else []):
        p["log"] = os.path.abspath(p["log"])
    job_dir(workdir, job)  # a bad job id is refused before anything else
    devices, smi = spec.get("devices", []), npus.find_tool("npu-smi")
    info = npus.read(smi)[0] if smi and devices else None
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    try:  # each rank's DEVICE_ID as its process sees the device (ASCEND_RT_VISIBLE_DEVICES, containers)
        cache = os.path.join(workdir, "cache", "npu-map.json")
        spec["device_map"] = npus.map_rank_devices(spec, smi, info, dict(os.environ), cache)
    except ValueError as e:
        raise AgentError(EXIT_USAGE, str(e)) from None
    ports, unit = spec.get("ports") or [], "NPU" if smi else "device"
    lock_fd = os.open(os.path.join(workdir, "start.lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(lock_fd, "w") as lock:  # one start at a time on this node: check, then spawn
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _start_locked(args, spec, workdir, job, grace, devices, smi, info, ports, unit)


def _start_locked(args: argparse.Namespace, spec: Json, workdir: str, job: str, grace: float,
                  devices: List[int], smi: Optional[str], info: Any, ports: List[int], unit: str) -> Json:  # fmt: skip
    """The rest of ``start``, under the node's start lock (two starts never both see the NPUs free)."""
    jdir = job_dir(workdir, job)
    conflicts = find_conflicts(workdir, devices, info, ports)
    if conflicts and args.force:  # only jobs recorded here holding what we need, never a foreign process
        for other in sorted({c["job"] for c in conflicts if c["source"] == "record"}):
            stop_job(workdir, other, grace)
        info = npus.read(smi)[0] if smi and devices else None
        conflicts = find_conflicts(workdir, devices, info, ports)
    held = {p for c in conflicts for p in c.get("ports") or []}
    conflicts += npus.ports_in_use(p for p in ports if p not in held)  # a listener we did not start
    if conflicts:
        raise AgentError(EXIT_BUSY, npus.busy_message(conflicts, workdir, unit=unit), conflicts=conflicts)
    if os.path.exists(os.path.join(jdir, "state.json")):
        raise AgentError(EXIT_BUSY, f"job {job} was already started on this node: use a new job id")
    wait = float(spec.get("release_wait_s", RELEASE_WAIT_S))
    # pids npu-smi still lists but that are gone; the listing just read is the first look
    released = npus.wait_released(smi, devices, (), wait, first_look=info)
    if released["free"] is False:
        listed = [dict(r, source="npu-smi", npu=r["device"], job=None) for r in released["listed"]]
        message = npus.busy_message(listed, workdir, released["waited_s"], unit)
        raise AgentError(EXIT_BUSY, message, conflicts=listed, released=released)
    for d in (workdir, os.path.dirname(jdir), jdir):
        os.makedirs(d, mode=0o700, exist_ok=True)
    os.chmod(jdir, 0o700)
    write_json(os.path.join(jdir, "spec.json"), spec)
    answer = dict(daemonize(workdir, job, jdir, foreground=getattr(args, "foreground", False)), job=job,
                  released=released, device_map=spec["device_map"])  # fmt: skip
    if any(p["spawn_error"] for p in answer["processes"]):
        raise AgentError(EXIT_SPAWN, "some processes failed to spawn; the job was stopped", **answer)
    return answer
