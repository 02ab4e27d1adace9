"""The agent's answering verbs: status, watch, list, check-devices, npu-info (node side)."""

from __future__ import annotations

import argparse
import os
import time

from orchestrator.agent.node import devices as npus
from orchestrator.agent.node import watch as node_watch
from orchestrator.agent.node.base import (
    ENV_JOB,
    EXIT_BUSY,
    EXIT_USAGE,
    AgentError,
    Json,
    all_states,
    job_dir,
    load_state,
    read_json,
    tail_text,
)
from orchestrator.agent.node.procs import is_alive, job_state, proc_marks, scan_marked, usage
from orchestrator.agent.node.progress import parse_eval, parse_progress
from orchestrator.agent.node.stop import stop_job


def cmd_status(args: argparse.Namespace) -> Json:
    st = load_state(args.workdir, args.job)
    spec = read_json(os.path.join(job_dir(args.workdir, args.job), "spec.json")) or {}
    live = [r["pid"] for r in st["processes"] if r["ended"] is None and is_alive(r["pid"], r["start_ticks"])]
    use, sup_alive = usage(live, args.cpu_sample), is_alive(st["supervisor_pid"], st.get("supervisor_start"))
    procs = []
    for r in st["processes"]:
        text = tail_text(r["log"])
        state = "running" if r["pid"] in live else "exited" if r["ended"] else "not-started"
        state = ("exiting" if sup_alive else "lost") if state == "not-started" and r["pid"] else state
        procs.append(dict({k: v for k, v in r.items() if k != "start_ticks"}, state=state,
                          log_tail=text.splitlines()[-args.lines :] if args.lines > 0 else [],
                          progress=parse_progress(text, spec.get("seq_length")), result=parse_eval(text),
                          **use.get(r["pid"], {"cpu_percent": None, "rss_bytes": None})))  # fmt: skip
    keys = "job_id node started ended root_cause stopping end_order leftovers supervisor_pid".split()
    return dict({k: st.get(k) for k in keys}, state=job_state(st), supervisor_alive=sup_alive,
                heartbeat_age=round(time.time() - st["heartbeat"], 3), processes=procs)  # fmt: skip


def cmd_watch(args: argparse.Namespace) -> Json:
    """Stream the job's events and take its commands on stdin/stdout (``node_watch``) until stdin ends."""
    jdir = job_dir(args.workdir, args.job)
    load_state(args.workdir, args.job)  # EXIT_NO_JOB before anything is streamed

    def status(lines: int = 20, cpu_sample: float = 0.0) -> Json:
        return cmd_status(
            argparse.Namespace(workdir=args.workdir, job=args.job, lines=lines, cpu_sample=cpu_sample)
        )

    def handle(request: Json) -> Json:
        op = request.get("op")
        if op == "status":
            return status(int(request.get("lines", 20)), float(request.get("cpu_sample", 0.0)))
        if op == "stop":
            return stop_job(
                args.workdir, args.job, float(request.get("grace", 10.0)), request.get("release_wait")
            )
        if op == "tail":
            procs = load_state(args.workdir, args.job)["processes"]
            lines = int(request.get("lines", 20))
            return {r["name"]: tail_text(r["log"]).splitlines()[-lines:] if lines > 0 else [] for r in procs}
        raise AgentError(EXIT_USAGE, f"unknown command {op!r}: status, stop or tail")

    def state() -> str:
        return job_state(read_json(os.path.join(jdir, "state.json")) or {"state": "unknown"})

    return dict(node_watch.serve(jdir, args.after, args.heartbeat, status, state, handle), job=args.job)


def cmd_list(args: argparse.Namespace) -> Json:
    """Every job recorded here, with the devices (None: the whole node) and ports its spec holds."""
    keys, jobs = ("job_id", "started", "ended", "root_cause"), []
    for st in all_states(args.workdir):
        devices, ports = npus.holds(read_json(os.path.join(job_dir(args.workdir, st["job_id"]), "spec.json")))
        jobs.append(dict({k: st[k] for k in keys}, state=job_state(st), processes=len(st["processes"]),
                         devices=devices, ports=ports))  # fmt: skip
    return {"jobs": jobs}


def cmd_check_devices(args: argparse.Namespace) -> Json:
    """Who holds these NPUs; free once npu-smi lists no process on them, waiting at most ``--wait`` s for
    pids that are gone (a live process is answered at once). Marked processes are listed, not counted."""
    devices, smi = [int(d) for d in args.devices.split(",") if d.strip()], npus.find_tool("npu-smi")
    info, error = npus.read(smi) if smi and devices else (None, "")
    holders = npus.holders(info, devices) if info is not None else []
    answer = dict(
        devices=devices, npu_smi=smi, holders=holders, error=error, waited_s=0.0, orchestrate=scan_marked()
    )
    live = [dict(h, source="npu-smi", npu=h["device"], job=proc_marks(h["local_pid"]).get(ENV_JOB))
            for h in holders if h["state"] == "running"]  # fmt: skip
    if live:
        raise AgentError(
            EXIT_BUSY, npus.busy_message(live, args.workdir), free=False, conflicts=live, **answer
        )
    if holders:
        released = npus.wait_released(smi, devices, (), args.wait, first_look=info)
        answer.update(holders=released["listed"], waited_s=released["waited_s"], error=released["error"])
        if released["free"] is False:
            listed = [dict(r, source="npu-smi", npu=r["device"], job=None) for r in released["listed"]]
            message = npus.busy_message(listed, args.workdir, released["waited_s"])
            raise AgentError(EXIT_BUSY, message, free=False, conflicts=listed, **answer)
    return dict(answer, free=True)


def cmd_npu_info(args: argparse.Namespace) -> Json:
    """What this node's npu-smi says, parsed by the shipped parser; where the tools are."""
    smi = npus.find_tool("npu-smi")
    (info, info_error), (mapping, map_error) = npus.read(smi), npus.read(smi, "map")
    return {"npu_smi": smi, "hccn_tool": npus.find_tool("hccn_tool", args.ascend_root),
            "info": npus.as_json(info), "info_error": info_error, "mapping": npus.as_json(mapping),
            "mapping_error": map_error, "holders": npus.holders(info) if info is not None else []}  # fmt: skip
