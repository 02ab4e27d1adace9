"""The node agent: starts, supervises, reports on and stops one job's processes on this node.

Copied to each node and run there with the node's Python (3.9+, standard library, psutil if present):
``python node_agent.py [--workdir DIR] <start|status|stop|list|version|check-devices> ...``.
Every answer is one JSON object on stdout; exit codes are the ``EXIT_*`` constants below.
Each job lives in ``<workdir>/jobs/<job_id>/`` (0700): ``spec.json``, ``state.json`` (0600, written
atomically by the detached supervisor), ``supervisor.log`` and the ``stop-requested`` marker.
A "node" is this host's network namespace: processes in other namespaces belong to other nodes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Set

try:
    import psutil
except ImportError:  # the /proc fallback below covers what we need
    psutil = None

AGENT_VERSION = "1"
ENV_JOB, ENV_RANK, ENV_ROLE = "ORCHESTRATE_JOB_ID", "ORCHESTRATE_RANK", "ORCHESTRATE_ROLE"
# When set, scans only see processes carrying the same value (tests; several agents on one host).
ENV_SCOPE = "ORCHESTRATE_AGENT_SCOPE"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_BUSY, EXIT_SPAWN, EXIT_SURVIVORS, EXIT_NO_JOB = range(7)
TERMINAL = ("succeeded", "failed", "stopped")
TAIL_BYTES = 256 * 1024
POLL_S = 0.1

Json = Dict[str, Any]


class AgentError(Exception):
    """A refusal or failure reported as JSON with an exit code."""

    def __init__(self, code: int, message: str, **extra: Any):
        super().__init__(message)
        self.code, self.extra = code, extra


# ---------------------------------------------------------------- files


def write_json(path: str, data: Json) -> None:
    """Write ``data`` atomically (temp file + rename), mode 0600."""
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str) -> Optional[Json]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def job_dir(workdir: str, job: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", job):
        raise AgentError(EXIT_USAGE, f"bad job id {job!r}: use letters, digits, '.', '_' and '-'")
    return os.path.join(workdir, "jobs", job)


def tail_text(path: str, max_bytes: int = TAIL_BYTES) -> str:
    """The last ``max_bytes`` of a file, decoded leniently ('' if missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


# ---------------------------------------------------------------- processes (/proc, psutil)


def proc_stat(pid: int) -> Optional[Json]:
    """State, process group, start time (clock ticks since boot) and CPU ticks of ``pid``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()
    return {
        "state": fields[0],
        "pgid": int(fields[2]),
        "ticks": int(fields[11]) + int(fields[12]),
        "start": int(fields[19]),
    }


def is_alive(pid: Optional[int], start: Optional[int] = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, when given, started at ``start`` (no pid reuse)."""
    st = proc_stat(pid) if pid else None
    return bool(st) and st["state"] != "Z" and (start is None or st["start"] == start)


def proc_cmd(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return " ".join(a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a)
    except OSError:
        return ""


def proc_marks(pid: int) -> Dict[str, str]:
    """The ORCHESTRATE_* variables a process started with (empty if none or unreadable)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    marks = (
        kv.decode("utf-8", "replace").split("=", 1)
        for kv in raw.split(b"\0")
        if kv.startswith(b"ORCHESTRATE_")
    )
    return {kv[0]: kv[1] for kv in marks if len(kv) == 2}


def _netns(pid: Any) -> Optional[str]:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def all_pids() -> List[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def scan_marked(job: Optional[str] = None) -> List[Json]:
    """Live processes of this node started by an agent (of ``job`` if given), except this one."""
    here, me, found, scope = _netns("self"), os.getpid(), [], os.environ.get(ENV_SCOPE)
    for pid in all_pids():
        marks = proc_marks(pid) if pid != me else {}
        if ENV_JOB not in marks or (job is not None and marks[ENV_JOB] != job):
            continue
        if scope is not None and marks.get(ENV_SCOPE) != scope:
            continue
        st = proc_stat(pid)
        if not st or st["state"] == "Z" or _netns(pid) not in (here, None):
            continue
        found.append(
            {"pid": pid, "pgid": st["pgid"], "job": marks[ENV_JOB], "role": marks.get(ENV_ROLE, ""),
             "rank": marks.get(ENV_RANK, ""), "cmd": proc_cmd(pid)}
        )  # fmt: skip
    return found


def live_in(pgids: Set[int], pids: Set[int]) -> Set[int]:
    """Live (non-zombie) processes that are in ``pids`` or belong to a group in ``pgids``."""
    live = set()
    for pid in all_pids() if pgids else pids:
        st = proc_stat(pid)
        if st and st["state"] != "Z" and (pid in pids or st["pgid"] in pgids):
            live.add(pid)
    return live


def _signal(target: int, sig: int, group: bool) -> None:
    try:
        (os.killpg if group else os.kill)(target, sig)
    except (ProcessLookupError, PermissionError):
        pass


def terminate(
    pgids: Iterable[int], pids: Iterable[int], grace: float, reap: Optional[Callable] = None
) -> Json:
    """TERM groups and processes, wait up to ``grace`` seconds, KILL what is left: {pid: last signal}."""
    own = {os.getpgrp(), 0, 1}
    groups, singles = {g for g in pgids if g not in own}, set(pids) - {os.getpid()}
    sent = {str(p): "TERM" for p in live_in(groups, singles)}
    for sig, deadline in ((signal.SIGTERM, time.time() + grace), (signal.SIGKILL, time.time() + grace + 3)):
        if sig == signal.SIGKILL:
            left = live_in(groups, singles)
            if not left:
                break
            sent.update({str(p): "KILL" for p in left})
            singles |= left
        for g in groups:
            _signal(g, sig, group=True)
        for p in singles:
            _signal(p, sig, group=False)
        while time.time() < deadline:
            if reap:
                reap()
            if not live_in(groups, singles):
                break
            time.sleep(0.05)
    return sent


def usage(pids: List[int], sample: float) -> Dict[int, Json]:
    """CPU % over a ``sample``-second window and resident memory (bytes) of each live pid."""

    def cpu_rss(pid: int) -> Optional[tuple]:
        try:
            if psutil is not None:
                p = psutil.Process(pid)
                t = p.cpu_times()
                return t.user + t.system, p.memory_info().rss
            with open(f"/proc/{pid}/statm") as f:
                rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            return proc_stat(pid)["ticks"] / os.sysconf("SC_CLK_TCK"), rss
        except Exception:  # the process went away (psutil or /proc raise different types)
            return None

    first = {p: cpu_rss(p) for p in pids}
    if pids and sample > 0:
        time.sleep(sample)
    out = {}
    for pid, a in first.items():
        b = cpu_rss(pid)
        if a and b:
            out[pid] = {"cpu_percent": round(100 * (b[0] - a[0]) / max(sample, 1e-3), 1), "rss_bytes": b[1]}
    return out


# ---------------------------------------------------------------- npu-smi


def parse_npu_smi(text: str) -> List[Json]:
    """Process rows of ``npu-smi info``: [{npu, chip, pid, name, memory}], any known layout."""
    rows, cols = [], None
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if any(c.startswith("Process id") for c in cells):
            cols = cells
            continue
        ids = cells[0].split() if cols else []
        if len(ids) != 2 or not all(i.isdigit() for i in ids) or len(cells) != len(cols):
            continue
        pid_col = next(i for i, c in enumerate(cols) if c.startswith("Process id"))
        name_col = next((i for i, c in enumerate(cols) if c.startswith("Process name")), pid_col + 1)
        if cells[pid_col].isdigit():
            rows.append(
                {"npu": int(ids[0]), "chip": int(ids[1]), "pid": int(cells[pid_col]),
                 "name": cells[name_col], "memory": cells[-1]}
            )  # fmt: skip
    return rows


def npu_holders(devices: Iterable[int]) -> Optional[List[Json]]:
    """Processes holding the given NPUs per ``npu-smi info``; None when npu-smi is absent or fails."""
    exe = shutil.which("npu-smi")
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, "info"], capture_output=True, text=True, timeout=30, env=dict(os.environ, LC_ALL="C")
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    wanted = set(devices)
    return [dict(r, cmd=proc_cmd(r["pid"])) for r in parse_npu_smi(out) if r["npu"] in wanted]


# ---------------------------------------------------------------- MindFormers log progress

# MFLossMonitor.print_output_info: "{ Epoch:[%3d/%3d], step:[%5d/%5d], loss: %5.6f, " (sink) or
# "loss:[%5.6f/%5.6f], " (no sink), optional "lm_loss: ..., ", then "per_step_time: %dms, [lr: %s, ]
# overflow cond: %s, loss_scale: %s, global_norm: %s[, train_throughput_per_npu: %.3fT]" and a second
# line "  %4.1f%% |bar| %.5f samples/s/p  <timedelta> }".
_STEP_RE = re.compile(r"Epoch:\[\s*(\d+)/\s*(\d+)\], step:\[\s*(\d+)/\s*(\d+)\], loss:\s*\[?\s*([^,/\]\s]+)")
_FIELD_RE = re.compile(
    r"(per_step_time|lr|overflow cond|loss_scale|global_norm|train_throughput_per_npu): (\[[^\]]*\]|[^,]*)"
)
_BAR_RE = re.compile(r"(\d+(?:\.\d+)?)% \|[^|]*\| ([\d.]+) samples/s/p\s+((?:\d+ days?, )?\d+:\d\d:\d\d)")
_DELTA_RE = re.compile(r"(?:(\d+) days?, )?(\d+):(\d\d):(\d\d)")


def _number(text: str) -> Optional[float]:
    try:
        return float(text.strip().strip("[]").rstrip("msT"))
    except ValueError:
        return None


def parse_progress(text: str, seq_length: Optional[int] = None) -> Optional[Json]:
    """The last training progress printed by MindFormers' MFLossMonitor in ``text`` (None if none)."""
    steps = list(_STEP_RE.finditer(text))
    if not steps:
        return None
    m = steps[-1]
    epoch, epochs, step, per_epoch = (int(g) for g in m.groups()[:4])
    line_end = text.find("\n", m.end())
    fields = dict(_FIELD_RE.findall(text[m.end() : None if line_end < 0 else line_end]))
    out: Json = {
        "epoch": epoch, "epochs": epochs, "step": step, "steps_per_epoch": per_epoch,
        "global_step": (epoch - 1) * per_epoch + step, "total_steps": epochs * per_epoch,
        "loss": _number(m.group(5)), "per_step_ms": _number(fields.get("per_step_time", "")),
        "lr": fields.get("lr"), "overflow": fields.get("overflow cond"),
        "loss_scale": fields.get("loss_scale"), "global_norm": fields.get("global_norm"),
        "tflops_per_npu": _number(fields.get("train_throughput_per_npu", "")),
        "percent": None, "samples_per_s": None, "tokens_per_s": None, "eta_s": None,
    }  # fmt: skip
    bar = _BAR_RE.search(text, m.end())
    if bar:
        days, h, mi, s = _DELTA_RE.match(bar.group(3)).groups()
        out.update(percent=float(bar.group(1)), samples_per_s=float(bar.group(2)))
        out["eta_s"] = int(days or 0) * 86400 + int(h) * 3600 + int(mi) * 60 + int(s)
        if seq_length:
            out["tokens_per_s"] = round(out["samples_per_s"] * seq_length, 3)
    elif out["per_step_ms"] is not None:
        out["eta_s"] = int((out["total_steps"] - out["global_step"]) * out["per_step_ms"] / 1000)
    return out


# ---------------------------------------------------------------- the supervisor (detached daemon)


class Supervisor:
    """Spawns the job's processes, reaps them, stops all on the first failure, keeps ``state.json``."""

    def __init__(self, workdir: str, job: str):
        self.dir = job_dir(workdir, job)
        self.spec: Json = read_json(os.path.join(self.dir, "spec.json")) or {}
        self.children: Dict[str, subprocess.Popen] = {}
        self.marker = os.path.join(self.dir, "stop-requested")
        self.stop_requested, self.stopping, self.terminated, self.last_write = False, False, False, 0.0
        self.grace = float(self.spec.get("grace_s", 10))
        procs = [dict(p, role=p.get("role", "rank")) for p in self.spec.get("ranks", [])]
        if self.spec.get("scheduler"):
            procs.insert(0, dict(self.spec["scheduler"], role="scheduler", rank=None))
        self.state: Json = {
            "job_id": job, "node": self.spec.get("node"), "agent_version": AGENT_VERSION, "state": "starting",
            "supervisor_pid": os.getpid(), "supervisor_start": proc_stat(os.getpid())["start"],
            "started": time.time(), "ended": None, "heartbeat": time.time(), "root_cause": None,
            "stopping": None, "end_order": [], "leftovers": {},
            "processes": [
                {"name": "scheduler" if p["role"] == "scheduler" else f"rank-{p['rank']}", "rank": p["rank"],
                 "role": p["role"], "argv": p["argv"], "log": p["log"], "pid": None, "pgid": None,
                 "start_ticks": None, "started": None, "ended": None, "returncode": None, "exit_code": None,
                 "signal": None, "killed_by_agent": False, "spawn_error": None, "end_seq": None}
                for p in procs
            ],
        }  # fmt: skip
        self.procs = procs

    def save(self) -> None:
        self.state["heartbeat"] = self.last_write = time.time()
        write_json(os.path.join(self.dir, "state.json"), self.state)

    def spawn(self, rec: Json, p: Json) -> None:
        env = dict(os.environ) if self.spec.get("inherit_env", True) else {}
        env.update({k: str(v) for k, v in (p.get("env") or {}).items()})
        rank = "" if p.get("rank") is None else str(p["rank"])
        env.update({ENV_JOB: self.state["job_id"], ENV_ROLE: p["role"], ENV_RANK: rank})
        if ENV_SCOPE in os.environ:
            env[ENV_SCOPE] = os.environ[ENV_SCOPE]
        try:
            os.makedirs(os.path.dirname(os.path.abspath(p["log"])), exist_ok=True)
            with open(p["log"], "ab") as log:
                proc = subprocess.Popen(
                    p["argv"], env=env, cwd=p.get("cwd") or None, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
        except (OSError, ValueError, TypeError) as e:
            rec.update(spawn_error=f"{type(e).__name__}: {e}", ended=time.time())
            return
        self.children[rec["name"]] = proc
        rec.update(pid=proc.pid, pgid=proc.pid, started=time.time(), start_ticks=proc_stat(proc.pid)["start"])

    def reap(self) -> None:
        for rec in self.state["processes"]:
            proc = self.children.get(rec["name"])
            rc = proc.poll() if proc and rec["ended"] is None else None
            if rc is None:
                continue
            if rc != 0 and not self.stopping and (self.stop_requested or os.path.exists(self.marker)):
                self.request_stop("stop requested")  # a stop, not a failure: `stop` signalled it first
            self.state["end_order"].append(rec["name"])
            rec.update(ended=time.time(), returncode=rc, end_seq=len(self.state["end_order"]))
            rec.update(
                exit_code=rc if rc >= 0 else 128 - rc, signal=signal.Signals(-rc).name if rc < 0 else None
            )
            failed = rc != 0 and not rec["killed_by_agent"]
            if failed and self.state["root_cause"] is None and not self.stopping:
                self.state["root_cause"] = self.cause(rec)
                if self.spec.get("fail_fast", True):
                    self.request_stop(f"fail-fast: {rec['name']} exited {rec['exit_code']}")
            self.save()

    def cause(self, rec: Json) -> Json:
        lines = tail_text(rec["log"], 64 * 1024).splitlines()[-20:]
        keys = ("name", "rank", "role", "pid", "exit_code", "signal", "spawn_error", "ended", "log")
        return dict({k: rec[k] for k in keys}, node=self.state["node"], log_tail=lines)

    def request_stop(self, reason: str) -> None:
        """Mark every running process as stopped by us (the main loop then terminates them)."""
        if self.stopping:
            return
        self.stopping = True
        self.state["stopping"] = {"reason": reason, "time": time.time()}
        if reason == "stop requested":
            self.grace = float((read_json(self.marker) or {}).get("grace", self.grace))
        for rec in self.state["processes"]:
            if rec["pid"] is not None and rec["ended"] is None:
                rec["killed_by_agent"] = True
        self.save()

    def on_term(self, signum: int, frame: Any) -> None:
        self.stop_requested = True

    def run(self, notify_fd: Optional[int]) -> int:
        signal.signal(signal.SIGTERM, self.on_term)
        for sig in (signal.SIGHUP, signal.SIGINT):  # handlers (not SIG_IGN) so children get defaults
            signal.signal(sig, lambda *_: None)
        for rec, p in zip(self.state["processes"], self.procs):
            self.spawn(rec, p)
        failed = [r for r in self.state["processes"] if r["spawn_error"]]
        self.state["state"] = "running"
        if failed:
            self.state["root_cause"] = self.cause(failed[0])
            self.request_stop(f"spawn failed: {failed[0]['name']}")
        self.save()
        if notify_fd is not None:
            keys = ("name", "rank", "role", "pid", "pgid", "log", "spawn_error")
            procs = [{k: r[k] for k in keys} for r in self.state["processes"]]
            try:
                os.write(notify_fd, json.dumps({"supervisor_pid": os.getpid(), "processes": procs}).encode())
                os.close(notify_fd)
            except OSError:  # `start` is gone (its SSH session died): carry on regardless
                pass
        while any(r["ended"] is None for r in self.state["processes"]):
            if self.stop_requested or os.path.exists(self.marker):
                self.request_stop("stop requested")
            self.reap()
            if self.stopping and not self.terminated:
                self.terminated = True
                running = {r["pgid"] for r in self.state["processes"] if r["pid"] and r["ended"] is None}
                terminate(running, set(), self.grace, reap=self.reap)
            if time.time() - self.last_write >= float(self.spec.get("heartbeat_s", 1.0)):
                self.save()
            time.sleep(POLL_S)
        self.finish(self.stop_requested or os.path.exists(self.marker))
        return EXIT_OK

    def finish(self, stopped: bool) -> None:
        left = scan_marked(self.state["job_id"])
        if left:  # grandchildren that left their group, or daemons a rank forgot
            self.state["leftovers"] = terminate({p["pgid"] for p in left if p["pgid"] == p["pid"]},
                                                {p["pid"] for p in left}, 2.0)  # fmt: skip
        bad = [r for r in self.state["processes"] if r["exit_code"] != 0]
        self.state["state"] = "stopped" if stopped else "failed" if bad else "succeeded"
        self.state["ended"] = time.time()
        self.save()


# ---------------------------------------------------------------- verbs


def find_conflicts(workdir: str, devices: Iterable[int]) -> List[Json]:
    """Processes of earlier jobs still on this node: by our records, by env marks, by NPU use."""
    found: Dict[int, Json] = {}
    for job in list_job_ids(workdir):
        st = read_json(os.path.join(job_dir(workdir, job), "state.json")) or {}
        sup = {
            "name": "supervisor",
            "pid": st.get("supervisor_pid"),
            "start_ticks": st.get("supervisor_start"),
        }
        for rec in [sup] + st.get("processes", []):
            if is_alive(rec.get("pid"), rec.get("start_ticks")):
                found[rec["pid"]] = {"source": "record", "job": job, "name": rec["name"], "pid": rec["pid"],
                                     "pgid": rec.get("pgid"), "cmd": proc_cmd(rec["pid"])}  # fmt: skip
    for p in scan_marked():
        found.setdefault(p["pid"], dict(p, source="environment"))
    for h in npu_holders(devices) or []:
        found.setdefault(h["pid"], dict(h, source="npu-smi", job=proc_marks(h["pid"]).get(ENV_JOB)))
    return sorted(found.values(), key=lambda c: c["pid"])


def check_spec(spec: Any) -> List[str]:
    """What is wrong with a job spec (empty if nothing)."""
    if not isinstance(spec, dict):
        return ["not a JSON object"]
    problems = [f"{k}: missing" for k in ("job_id", "ranks", "agent_version") if not spec.get(k)]
    ranks = spec.get("ranks") if isinstance(spec.get("ranks"), list) else []
    for i, p in enumerate(ranks + ([spec["scheduler"]] if spec.get("scheduler") else [])):
        where = "scheduler" if i == len(ranks) else f"ranks[{i}]"
        if not isinstance(p, dict):
            problems.append(f"{where}: not an object")
            continue
        if (
            not isinstance(p.get("argv"), list)
            or not p["argv"]
            or not all(isinstance(a, str) for a in p["argv"])
        ):
            problems.append(f"{where}.argv: must be a non-empty list of strings")
        if not isinstance(p.get("log"), str) or not p["log"]:
            problems.append(f"{where}.log: missing")
        if not isinstance(p.get("env", {}), dict):
            problems.append(f"{where}.env: must be an object")
        if i < len(ranks) and not isinstance(p.get("rank"), int):
            problems.append(f"{where}.rank: must be an integer")
    return problems


def cmd_start(args: argparse.Namespace) -> Json:
    spec = read_json(args.spec)
    problems = check_spec(spec)
    if problems:
        raise AgentError(EXIT_USAGE, f"{args.spec}: bad job spec", problems=problems)
    if str(spec.get("agent_version")) != AGENT_VERSION:
        raise AgentError(
            EXIT_USAGE, f"spec is for agent {spec.get('agent_version')}, this is {AGENT_VERSION}"
        )
    workdir, job = spec.get("work_dir") or args.workdir, spec["job_id"]
    jdir = job_dir(workdir, job)
    conflicts = find_conflicts(workdir, spec.get("devices", []))
    if conflicts and args.force:
        for other in sorted({c["job"] for c in conflicts if c["source"] == "record"}):
            stop_job(workdir, other, float(spec.get("grace_s", 10)))
        rest = [c for c in find_conflicts(workdir, spec.get("devices", []))]
        terminate({c["pgid"] for c in rest if c.get("pgid") == c["pid"]}, {c["pid"] for c in rest},
                  float(spec.get("grace_s", 10)))  # fmt: skip
        conflicts = find_conflicts(workdir, spec.get("devices", []))
    if conflicts:
        jobs = sorted({str(c.get("job")) for c in conflicts})
        raise AgentError(EXIT_BUSY, f"node busy: processes of earlier job(s) {', '.join(jobs)} still run",
                         conflicts=conflicts)  # fmt: skip
    if os.path.exists(os.path.join(jdir, "state.json")) and not args.force:
        raise AgentError(EXIT_BUSY, f"job {job} was already started on this node (use --force to restart)")
    os.makedirs(jdir, mode=0o700, exist_ok=True)
    os.chmod(jdir, 0o700)
    for stale in ("state.json", "stop-requested"):
        if os.path.exists(os.path.join(jdir, stale)):
            os.remove(os.path.join(jdir, stale))
    write_json(os.path.join(jdir, "spec.json"), spec)
    answer = dict(daemonize(workdir, job, jdir), job=job)
    if any(p["spawn_error"] for p in answer["processes"]):
        raise AgentError(EXIT_SPAWN, "some processes failed to spawn; the job was stopped", **answer)
    return answer


def daemonize(workdir: str, job: str, jdir: str, timeout: float = 60.0) -> Json:
    """Start the supervisor detached (double fork, setsid, exec); return its state once all spawned."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: new session, fork again so the daemon can never regain a terminal
        try:
            os.close(r)
            os.setsid()
            if os.fork() > 0:
                os._exit(0)
            os.chdir(jdir)
            os.umask(0o077)
            null = os.open(os.devnull, os.O_RDONLY)
            out = os.open(os.path.join(jdir, "supervisor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            for fd, target in ((null, 0), (out, 1), (out, 2)):
                os.dup2(fd, target)
            os.closerange(3, w)
            os.closerange(w + 1, 65536)
            os.set_inheritable(w, True)
            env = dict(os.environ, **{ENV_JOB: job, ENV_ROLE: "supervisor", ENV_RANK: ""})
            argv = [
                sys.executable,
                os.path.abspath(__file__),
                "--workdir",
                workdir,
                "supervise",
                "--job",
                job,
            ]
            os.execve(sys.executable, argv + ["--notify-fd", str(w)], env)
        finally:
            os._exit(127)
    os.close(w)
    os.waitpid(pid, 0)
    chunks, deadline = [], time.time() + timeout
    while time.time() < deadline:
        if select.select([r], [], [], max(0.0, deadline - time.time()))[0]:
            data = os.read(r, 65536)
            if not data:
                break
            chunks.append(data)
    os.close(r)
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        raise AgentError(EXIT_SPAWN, "the supervisor did not report back; see supervisor.log",
                         supervisor_log=tail_text(os.path.join(jdir, "supervisor.log"), 4096)) from None  # fmt: skip


def list_job_ids(workdir: str) -> List[str]:
    try:
        return sorted(os.listdir(os.path.join(workdir, "jobs")))
    except OSError:
        return []


def load_state(workdir: str, job: str) -> Json:
    st = read_json(os.path.join(job_dir(workdir, job), "state.json"))
    if st is None:
        raise AgentError(EXIT_NO_JOB, f"no job {job} on this node (under {workdir})")
    return st


def job_state(st: Json) -> str:
    if is_alive(st.get("supervisor_pid"), st.get("supervisor_start")):
        return "stopping" if st.get("stopping") and st["state"] not in TERMINAL else st["state"]
    return st["state"] if st["state"] in TERMINAL else "unknown"


def cmd_status(args: argparse.Namespace) -> Json:
    st = load_state(args.workdir, args.job)
    spec = read_json(os.path.join(job_dir(args.workdir, args.job), "spec.json")) or {}
    live = [r["pid"] for r in st["processes"] if r["ended"] is None and is_alive(r["pid"], r["start_ticks"])]
    use = usage(live, args.cpu_sample)
    sup_alive = is_alive(st["supervisor_pid"], st.get("supervisor_start"))
    procs = []
    for r in st["processes"]:
        text = tail_text(r["log"])
        state = "running" if r["pid"] in live else "exited" if r["ended"] else "not-started"
        state = ("exiting" if sup_alive else "lost") if state == "not-started" and r["pid"] else state
        procs.append(dict({k: v for k, v in r.items() if k != "start_ticks"}, state=state,
                          log_tail=text.splitlines()[-args.lines :] if args.lines else [],
                          progress=parse_progress(text, spec.get("seq_length")),
                          **use.get(r["pid"], {"cpu_percent": None, "rss_bytes": None})))  # fmt: skip
    keys = (
        "job_id",
        "node",
        "started",
        "ended",
        "root_cause",
        "stopping",
        "end_order",
        "leftovers",
        "supervisor_pid",
    )
    return dict({k: st.get(k) for k in keys}, state=job_state(st), supervisor_alive=sup_alive,
                heartbeat_age=round(time.time() - st["heartbeat"], 3), processes=procs)  # fmt: skip


def stop_job(workdir: str, job: str, grace: float) -> Json:
    """Stop every process of ``job`` on this node and verify that none is left."""
    st, jdir = load_state(workdir, job), job_dir(workdir, job)
    write_json(os.path.join(jdir, "stop-requested"), {"time": time.time(), "grace": grace})
    sup, sup_start = st.get("supervisor_pid"), st.get("supervisor_start")
    sup_alive = is_alive(sup, sup_start)
    if sup_alive:
        _signal(sup, signal.SIGTERM, group=False)
    recs = [r for r in st["processes"] if is_alive(r["pid"], r["start_ticks"])]
    marked = scan_marked(job)
    pids = {p["pid"] for p in marked if p["pid"] != sup}
    groups = {r["pgid"] for r in recs} | {
        p["pgid"] for p in marked if p["pgid"] == p["pid"] and p["pid"] != sup
    }
    killed = terminate(groups, pids, grace)
    deadline = time.time() + grace + 5
    while sup_alive and is_alive(sup, sup_start) and time.time() < deadline:
        time.sleep(0.05)  # let the supervisor record exit codes and the final state
    if is_alive(sup, sup_start):
        killed.update(terminate(set(), {sup}, 0.0))
    st = read_json(os.path.join(jdir, "state.json")) or st
    if st["state"] not in TERMINAL:  # the supervisor was gone: record the stop ourselves
        for r in st["processes"]:
            if r["ended"] is None:
                r.update(ended=time.time(), killed_by_agent=True)
        st.update(state="stopped", ended=time.time())
        write_json(os.path.join(jdir, "state.json"), st)
    left = scan_marked(job) + [
        {"pid": r["pid"], "pgid": r["pgid"], "name": r["name"], "cmd": proc_cmd(r["pid"])}
        for r in st["processes"] if is_alive(r["pid"], r["start_ticks"])
    ]  # fmt: skip
    return {"job": job, "state": st["state"], "killed": killed, "left": left, "none_left": not left}


def cmd_stop(args: argparse.Namespace) -> Json:
    answer = stop_job(args.workdir, args.job, args.grace)
    if answer["left"]:
        raise AgentError(
            EXIT_SURVIVORS, f"{len(answer['left'])} process(es) of job {args.job} survived", **answer
        )
    return answer


def cmd_list(args: argparse.Namespace) -> Json:
    jobs = []
    for job in list_job_ids(args.workdir):
        st = read_json(os.path.join(job_dir(args.workdir, job), "state.json"))
        if st:
            jobs.append({"job_id": job, "state": job_state(st), "started": st["started"], "ended": st["ended"],
                         "processes": len(st["processes"]), "root_cause": st.get("root_cause")})  # fmt: skip
    return {"jobs": jobs}


def cmd_version(args: argparse.Namespace) -> Json:
    return {"version": AGENT_VERSION, "python": sys.version.split()[0], "psutil": psutil is not None,
            "npu_smi": shutil.which("npu-smi") is not None}  # fmt: skip


def cmd_check_devices(args: argparse.Namespace) -> Json:
    devices = [int(d) for d in args.devices.split(",") if d.strip()]
    holders = npu_holders(devices)
    marked = scan_marked()
    answer = {"devices": devices, "npu_smi": holders is not None, "holders": holders or [], "orchestrate": marked,
              "free": not (holders or marked)}  # fmt: skip
    if holders or marked:
        raise AgentError(EXIT_BUSY, "devices or node in use", **answer)
    return answer


def cmd_supervise(args: argparse.Namespace) -> Json:
    sys.exit(Supervisor(args.workdir, args.job).run(args.notify_fd))


def build_parser() -> argparse.ArgumentParser:
    default_wd = os.environ.get("ORCHESTRATE_AGENT_WORKDIR", os.path.expanduser("~/.orchestrate-node"))
    ap = argparse.ArgumentParser(prog="node_agent.py", description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=default_wd, help="agent state folder (start uses the spec's)")
    sub = ap.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("start", help="start a job from a spec file")
    p.add_argument("--spec", required=True)
    p.add_argument("--force", action="store_true", help="stop earlier jobs' processes first")
    p.set_defaults(func=cmd_start)
    p = sub.add_parser("status", help="state of a job as JSON")
    p.add_argument("--job", required=True)
    p.add_argument("--lines", type=int, default=20)
    p.add_argument("--cpu-sample", type=float, default=0.1, help="seconds over which CPU %% is measured")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("stop", help="stop a job and verify nothing is left")
    p.add_argument("--job", required=True)
    p.add_argument("--grace", type=float, default=10.0)
    p.set_defaults(func=cmd_stop)
    sub.add_parser("list", help="jobs known on this node").set_defaults(func=cmd_list)
    sub.add_parser("version", help="agent version").set_defaults(func=cmd_version)
    p = sub.add_parser("check-devices", help="who holds these NPUs / runs orchestrate processes")
    p.add_argument("--devices", default="")
    p.set_defaults(func=cmd_check_devices)
    p = sub.add_parser("supervise", help=argparse.SUPPRESS)
    p.add_argument("--job", required=True)
    p.add_argument("--notify-fd", type=int, default=None)
    p.set_defaults(func=cmd_supervise)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        answer, code = dict(args.func(args), ok=True), EXIT_OK
    except AgentError as e:
        answer, code = dict(e.extra, ok=False, error=str(e), exit_code=e.code), e.code
    except Exception as e:  # report, never a bare traceback: the controller parses stdout
        answer, code = {"ok": False, "error": f"{type(e).__name__}: {e}", "exit_code": EXIT_ERROR}, EXIT_ERROR
    print(json.dumps(answer, sort_keys=True, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
