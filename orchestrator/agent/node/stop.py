"""``stop``: every process of a job on this node ended (TERM, grace, KILL), verified (node side)."""

from __future__ import annotations

import os
import signal
import time
from typing import Optional

from orchestrator.agent.node import devices as npus
from orchestrator.agent.node.base import (
    EXIT_SURVIVORS,
    RELEASE_WAIT_S,
    TERMINAL,
    AgentError,
    Json,
    job_dir,
    load_state,
    read_json,
    write_json,
)
from orchestrator.agent.node.journal import Journal
from orchestrator.agent.node.procs import is_alive, live_in, scan_marked, terminate


def stop_job(workdir: str, job: str, grace: float, release_wait: Optional[float] = None) -> Json:
    """Stop every process of ``job`` on this node (TERM, grace, KILL); raise if any survives. Then wait,
    at most ``release_wait`` s (default: the spec's), until npu-smi no longer lists a process of the job,
    or one that is gone, on the job's NPUs (``release``: how long, and what is still listed; with
    ``release_wait`` 0 npu-smi is not asked at all)."""
    st, jdir = load_state(workdir, job), job_dir(workdir, job)
    sup, sup_start = st["supervisor_pid"], st.get("supervisor_start")
    marked = [p for p in scan_marked(job) if p["pid"] != sup]
    groups = {r["pgid"] for r in st["processes"] if is_alive(r["pid"], r["start_ticks"])}
    groups |= {p["pgid"] for p in marked if p["pgid"] == p["pid"]}
    killed = {str(p): "TERM" for p in live_in(groups, {p["pid"] for p in marked})}  # what we found
    write_json(os.path.join(jdir, "stop-requested"), {"time": time.time(), "grace": grace})
    sup_alive = is_alive(sup, sup_start)
    if sup_alive:
        os.kill(sup, signal.SIGTERM)  # it terminates its children too and records their exit codes
    killed.update(terminate(groups, {p["pid"] for p in marked}, grace))
    deadline = time.time() + grace + 5
    while sup_alive and is_alive(sup, sup_start) and time.time() < deadline:
        time.sleep(0.05)  # let the supervisor write the final state
    if is_alive(sup, sup_start):
        killed.update(terminate(set(), {sup}, 0.0))
    st = read_json(os.path.join(jdir, "state.json")) or st
    if st["state"] not in TERMINAL:  # the supervisor was gone: record the stop ourselves
        for r in st["processes"]:
            r.update({"ended": time.time(), "killed_by_agent": True} if r["ended"] is None else {})
        st.update(state="stopped", ended=time.time())
        write_json(os.path.join(jdir, "state.json"), st)
        journal = Journal(jdir)  # the supervisor, its writer, is gone
        for r in st["processes"]:
            journal.append("rank-exited", **{k: r.get(k) for k in ("name", "pid", "exit_code", "signal",
                           "returncode", "killed_by_agent", "ended", "end_seq", "spawn_error")})  # fmt: skip
        journal.append("state", **{k: st.get(k) for k in ("state", "stopping", "root_cause", "ended")})
        journal.close()
    sigkilled = [str(r["pid"]) for r in st["processes"] if r["signal"] == "SIGKILL"]
    killed.update({pid: "KILL" for pid in sigkilled if pid in killed})  # by the supervisor, maybe
    alive = [r for r in st["processes"] if is_alive(r["pid"], r["start_ticks"])]
    left = scan_marked(job) + [dict(pid=r["pid"], name=r["name"]) for r in alive]
    # the supervisor is a start call forked: it carries that call's environment, not the job's marks
    if is_alive(sup, sup_start):
        left.append(dict(pid=sup, name="supervisor"))
    answer = {"job": job, "state": st["state"], "killed": killed, "left": left, "none_left": not left}
    if left:
        raise AgentError(EXIT_SURVIVORS, f"{len(left)} process(es) of {job} survived", **answer)
    spec = read_json(os.path.join(jdir, "spec.json")) or {}
    wait = float(spec.get("release_wait_s", RELEASE_WAIT_S) if release_wait is None else release_wait)
    own = {r["pid"] for r in st["processes"] if r["pid"]} | {int(pid) for pid in killed}
    if wait <= 0:  # a fail-fast stop: the NPUs' release is waited for by whoever starts on them next
        answer["release"] = {"devices": spec.get("devices", []), "npu_smi": None, "free": None,
                             "waited_s": 0.0, "listed": [], "error": "not waited for"}  # fmt: skip
        return answer
    answer["release"] = npus.wait_released(npus.find_tool("npu-smi"), spec.get("devices", []), own, wait)
    return answer
