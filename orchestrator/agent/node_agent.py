"""The node agent: starts, supervises, reports on and stops one job's processes on this node.

Copied to each node with ``node_devices.py`` and the npu-smi parser (``ascend/``) next to it, run with its
Python (3.9+, standard library, Linux /proc): ``python node_agent.py [--workdir DIR]
<start|status|stop|list|version|check-devices|npu-info> ...``; answers one JSON object on stdout (``ok``
plus data, or ``error``), exit codes ``EXIT_*``. A job lives in ``<workdir>/jobs/<job_id>/`` (0700):
``spec.json``, ``state.json`` (0600, written atomically by the detached supervisor), ``supervisor.log``,
the ``stop-requested`` marker. Every process we start carries ORCHESTRATE_JOB_ID, _ROLE and _RANK in its
environment, which finds leftovers. A node is this host's network namespace. Only processes of jobs
recorded here are ever stopped; NPUs count as free once npu-smi lists no process on them. Several jobs
may run at once: a start is refused only for the NPUs (rank slots on cpu) and ports a live job holds.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Set

if __package__:  # imported from the controller's package
    from orchestrator.agent import node_devices as npus
else:  # run as a script: node_devices.py was shipped next to this file
    import node_devices as npus  # type: ignore[no-redef]

AGENT_VERSION = "3"
ENV_JOB, ENV_RANK, ENV_ROLE = "ORCHESTRATE_JOB_ID", "ORCHESTRATE_RANK", "ORCHESTRATE_ROLE"
# When set, scans only see processes carrying the same value (tests; several agents on one host).
ENV_SCOPE = "ORCHESTRATE_AGENT_SCOPE"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_BUSY, EXIT_SPAWN, EXIT_SURVIVORS, EXIT_NO_JOB = range(7)
TERMINAL = ("succeeded", "failed", "stopped")
RELEASE_WAIT_S = 30.0  # how long to wait for npu-smi to stop listing a job's (or a dead) process

Json = Dict[str, Any]


class AgentError(Exception):
    """A refusal or failure, answered as JSON (``error`` plus ``extra``) with exit code ``code``."""

    def __init__(self, code: int, message: str, **extra: Any):
        super().__init__(message)
        self.code, self.extra = code, extra


# ---------------------------------------------------------------- files
def write_json(path: str, data: Json) -> None:
    """Write ``data`` atomically (temp file + rename), mode 0600."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str) -> Optional[Json]:
    with contextlib.suppress(OSError, ValueError), open(path) as f:
        return json.load(f)
    return None


def tail_text(path: str, max_bytes: int = 256 * 1024) -> str:
    """The last ``max_bytes`` of a file, decoded leniently ('' if missing)."""
    with contextlib.suppress(OSError), open(path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
        return f.read().decode("utf-8", "replace")
    return ""


def job_dir(workdir: str, job: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", job):
        raise AgentError(EXIT_USAGE, f"bad job id {job!r}: use letters, digits, '.', '_' and '-'")
    return os.path.join(workdir, "jobs", job)


def all_states(workdir: str) -> List[Json]:
    """The state of every job recorded under ``workdir``, by job id."""
    root = os.path.join(workdir, "jobs")
    jobs = sorted(os.listdir(root)) if os.path.isdir(root) else []
    return [st for st in (read_json(os.path.join(root, j, "state.json")) for j in jobs) if st]


def load_state(workdir: str, job: str) -> Json:
    st = read_json(os.path.join(job_dir(workdir, job), "state.json"))
    if st is None:
        raise AgentError(EXIT_NO_JOB, f"no job {job} on this node (under {workdir})")
    return st


# ---------------------------------------------------------------- processes (/proc)
def proc_stat(pid: Any) -> Optional[Json]:
    """State, process group, start time and CPU time (clock ticks), resident pages of ``pid``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()  # fields 3.. of proc(5); the name may hold spaces
    ticks, rss = int(fields[11]) + int(fields[12]), int(fields[21])
    return {"state": fields[0], "pgid": int(fields[2]), "ticks": ticks, "start": int(fields[19]), "rss": rss}


def is_alive(pid: Optional[int], start: Optional[int] = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, when given, started at ``start`` (no pid reuse)."""
    st = proc_stat(pid) if pid else None
    return bool(st) and st["state"] != "Z" and (start is None or st["start"] == start)


def proc_read(pid: Any, name: str) -> List[str]:
    """A NUL-separated /proc file (cmdline, environ) as strings; [] if unreadable."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/{name}", "rb") as f:
        return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    return []


def proc_marks(pid: int) -> Dict[str, str]:
    """The ORCHESTRATE_* variables a process started with (empty if none or unreadable)."""
    env = proc_read(pid, "environ")
    return dict(kv.split("=", 1) for kv in env if kv.startswith("ORCHESTRATE_") and "=" in kv)


def netns(pid: Any) -> Optional[str]:
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/{pid}/ns/net")
    return None


def scan_marked(job: Optional[str] = None) -> List[Json]:
    """Live processes of this node started by an agent (of ``job`` if given), except this one."""
    here, scope, found = netns("self"), os.environ.get(ENV_SCOPE), []
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        marks = proc_marks(pid) if pid != os.getpid() else {}
        ours = ENV_JOB in marks and job in (None, marks[ENV_JOB]) and scope in (None, marks.get(ENV_SCOPE))
        st = proc_stat(pid) if ours else None
        if st and st["state"] != "Z" and netns(pid) in (here, None):
            found.append({"pid": pid, "pgid": st["pgid"], "job": marks[ENV_JOB], "role": marks.get(ENV_ROLE, ""),
                          "rank": marks.get(ENV_RANK, ""), "cmd": " ".join(proc_read(pid, "cmdline"))})  # fmt: skip
    return found


def live_in(pgids: Set[int], pids: Set[int]) -> Set[int]:
    """Live (non-zombie) processes that are in ``pids`` or belong to a group in ``pgids``."""
    candidates = [int(p) for p in os.listdir("/proc") if p.isdigit()] if pgids else pids
    stats = ((pid, proc_stat(pid)) for pid in candidates)
    return {pid for pid, st in stats if st and st["state"] != "Z" and (pid in pids or st["pgid"] in pgids)}


def terminate(pgids: Set[int], pids: Set[int], grace: float, reap: Optional[Callable] = None) -> Json:
    """TERM groups and processes, wait up to ``grace`` s, KILL what is left: {pid: last signal sent}."""
    groups, singles = set(pgids) - {os.getpgrp(), 0, 1}, set(pids) - {os.getpid()}
    sent: Json = {}
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 3.0)):
        left = live_in(groups, singles)
        if not left:
            break
        sent.update({str(p): sig.name[3:] for p in left})
        singles |= left
        for target, kill in [(g, os.killpg) for g in groups] + [(p, os.kill) for p in singles]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(target, sig)
        deadline = time.time() + wait
        while time.time() < deadline:
            if reap:
                reap()
            if not live_in(groups, singles):
                break
            time.sleep(0.05)
    return sent


def usage(pids: List[int], sample: float) -> Dict[int, Json]:
    """CPU % over ``sample`` s (0: over the process's life) and resident memory (bytes) of live pids."""
    first = {p: proc_stat(p) if sample > 0 else {"ticks": 0} for p in pids}
    time.sleep(sample if pids else 0)
    out, hz, page = {}, os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    for pid, a in first.items():
        b = proc_stat(pid)
        if a and b:
            seconds = sample if sample > 0 else max(uptime - b["start"] / hz, 1e-3)
            cpu = 100 * (b["ticks"] - a["ticks"]) / hz / seconds
            out[pid] = {"cpu_percent": round(cpu, 1), "rss_bytes": b["rss"] * page}
    return out


# ---------------------------------------------------------------- MindFormers log progress

# MFLossMonitor.print_output_info: "{ Epoch:[%3d/%3d], step:[%5d/%5d], loss: %5.6f, " (sink) or
# "loss:[%5.6f/%5.6f], " (no sink), optional "lm_loss: ..., ", then "per_step_time: %dms, [lr: %s, ]
# overflow cond: %s, loss_scale: %s, global_norm: %s[, train_throughput_per_npu: %.3fT]" and a second
# line "  %4.1f%% |bar| %.5f samples/s/p  <timedelta> }".
_STEP_RE = re.compile(r"Epoch:\[\s*(\d+)/\s*(\d+)\], step:\[\s*(\d+)/\s*(\d+)\], loss:\s*\[?\s*([^,/\]\s]+)")
_KEYS = "per_step_time|lr|overflow cond|loss_scale|global_norm|train_throughput_per_npu"
_FIELD_RE = re.compile(rf"({_KEYS}): (\[[^\]]*\]|[^,]*)")
_BAR_RE = re.compile(
    r"(\d+(?:\.\d+)?)% \|[^|]*\| ([\d.]+) samples/s/p\s+(?:(\d+) days?, )?(\d+):(\d\d):(\d\d)"
)


def _number(text: Optional[str]) -> Optional[float]:
    try:
        return float((text or "").strip().strip("[]").rstrip("msT"))
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
    f = dict(_FIELD_RE.findall(text[m.end() : None if line_end < 0 else line_end]))
    out: Json = {
        "epoch": epoch, "epochs": epochs, "step": step, "steps_per_epoch": per_epoch,
        "global_step": (epoch - 1) * per_epoch + step, "total_steps": epochs * per_epoch,
        "loss": _number(m.group(5)), "per_step_ms": _number(f.get("per_step_time")), "lr": f.get("lr"),
        "overflow": f.get("overflow cond"), "loss_scale": f.get("loss_scale"), "global_norm": f.get("global_norm"),
        "tflops_per_npu": _number(f.get("train_throughput_per_npu")),
        "percent": None, "samples_per_s": None, "tokens_per_s": None, "eta_s": None,
    }  # fmt: skip
    bar = _BAR_RE.search(text, m.end())
    if bar:
        days, h, mi, s = (int(g or 0) for g in bar.groups()[2:])
        out.update(percent=float(bar.group(1)), samples_per_s=float(bar.group(2)))
        out["eta_s"] = days * 86400 + h * 3600 + mi * 60 + s
        out["tokens_per_s"] = round(out["samples_per_s"] * seq_length, 3) if seq_length else None
    elif out["per_step_ms"] is not None:
        out["eta_s"] = int((out["total_steps"] - out["global_step"]) * out["per_step_ms"] / 1000)
    return out


# The model package's run_mode eval (iflytekspark.tasks.evaluate): its one result line.
_EVAL_RE = re.compile(r"^eval: loss ([-+\w.]+), perplexity ([-+\w.]+), rows (\d+), tokens (\d+)\s*$", re.M)


def parse_eval(text: str) -> Optional[Json]:
    """The last ``eval: loss L, perplexity P, rows R, tokens T`` line in ``text`` (None if none)."""
    found = list(_EVAL_RE.finditer(text))
    if not found:
        return None
    m = found[-1]
    loss, ppl = _number(m.group(1)), _number(m.group(2))
    if loss is None or ppl is None:
        return None
    return {"loss": loss, "perplexity": ppl, "rows": int(m.group(3)), "tokens": int(m.group(4))}


# ---------------------------------------------------------------- the supervisor (detached daemon)
class Supervisor:
    """Spawns the job's processes, reaps them, stops all on the first failure, keeps ``state.json``."""

    def __init__(self, workdir: str, job: str):
        self.dir = job_dir(workdir, job)
        self.spec: Json = read_json(os.path.join(self.dir, "spec.json")) or {}
        self.marker = os.path.join(self.dir, "stop-requested")
        self.children: Dict[str, subprocess.Popen] = {}
        self.stop_requested = self.stopping = self.terminated = False
        self.last_write, self.grace = 0.0, float(self.spec.get("grace_s", 10))
        self.procs = [dict(p, role="rank") for p in self.spec.get("ranks", [])]
        if self.spec.get("scheduler"):
            self.procs.insert(0, dict(self.spec["scheduler"], role="scheduler", rank=None))
        self.state: Json = {
            "job_id": job, "node": self.spec.get("node"), "agent_version": AGENT_VERSION, "state": "starting",
            "supervisor_pid": os.getpid(), "supervisor_start": proc_stat(os.getpid())["start"],
            "started": time.time(), "ended": None, "heartbeat": time.time(), "root_cause": None,
            "stopping": None, "end_order": [], "leftovers": {}, "device_map": self.spec.get("device_map"),
            "processes": [
                {"name": "scheduler" if p["role"] == "scheduler" else f"rank-{p['rank']}", "rank": p["rank"],
                 "role": p["role"], "argv": p["argv"], "log": p["log"], "pid": None, "pgid": None,
                 "start_ticks": None, "started": None, "ended": None, "returncode": None, "exit_code": None,
                 "signal": None, "killed_by_agent": False, "spawn_error": None, "end_seq": None}
                for p in self.procs
            ],
        }  # fmt: skip

    def save(self) -> None:
        self.state["heartbeat"] = self.last_write = time.time()
        write_json(os.path.join(self.dir, "state.json"), self.state)

    def spawn(self, rec: Json, p: Json) -> None:
        env = dict(os.environ) if self.spec.get("inherit_env", True) else {}
        env.update({k: str(v) for k, v in (p.get("env") or {}).items()})
        rank = "" if p["rank"] is None else str(p["rank"])
        env.update({ENV_JOB: self.state["job_id"], ENV_ROLE: p["role"], ENV_RANK: rank})
        env.update({ENV_SCOPE: os.environ[ENV_SCOPE]} if ENV_SCOPE in os.environ else {})
        try:
            os.makedirs(os.path.dirname(os.path.abspath(p["log"])), exist_ok=True)
            with open(p["log"], "ab") as log:
                proc = subprocess.Popen(p["argv"], env=env, cwd=p.get("cwd") or None, stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        except (OSError, ValueError, TypeError) as e:
            rec.update(spawn_error=f"{type(e).__name__}: {e}", ended=time.time())
            return
        self.children[rec["name"]] = proc
        rec.update(pid=proc.pid, pgid=proc.pid, started=time.time(), start_ticks=proc_stat(proc.pid)["start"])

    def reap(self) -> None:
        """Record processes that ended; the first unexpected failure is the root cause (fail-fast)."""
        for rec in self.state["processes"]:
            proc = self.children.get(rec["name"])
            rc = proc.poll() if proc and rec["ended"] is None else None
            if rc is None:
                continue
            if rc != 0 and (self.stop_requested or os.path.exists(self.marker)):
                self.request_stop("stop requested")  # `stop` signalled it before we saw the request
            self.state["end_order"].append(rec["name"])
            sig = next((s.name for s in signal.Signals if s.value == -rc), f"SIG{-rc}") if rc < 0 else None
            code = rc if rc >= 0 else 128 - rc  # shell style: 143 for SIGTERM
            seq = len(self.state["end_order"])
            rec.update(ended=time.time(), returncode=rc, exit_code=code, signal=sig, end_seq=seq)
            if rc != 0 and not rec["killed_by_agent"] and self.state["root_cause"] is None:
                self.state["root_cause"] = self.cause(rec)
                if self.spec.get("fail_fast", True):
                    self.request_stop(f"fail-fast: {rec['name']} exited {rec['exit_code']}")
            self.save()

    def cause(self, rec: Json) -> Json:
        keys = ("name", "rank", "role", "pid", "exit_code", "signal", "spawn_error", "ended", "log")
        tail = tail_text(rec["log"], 64 * 1024).splitlines()[-20:]
        return dict({k: rec[k] for k in keys}, node=self.state["node"], log_tail=tail)

    def request_stop(self, reason: str) -> None:
        """Mark every running process as stopped by us; the main loop then terminates them."""
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

    def run(self, notify_fd: Optional[int]) -> Json:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop_requested", True))
        for sig in (signal.SIGHUP, signal.SIGINT):  # handlers, not SIG_IGN, so children get the defaults
            signal.signal(sig, lambda *_: None)
        for rec, p in zip(self.state["processes"], self.procs):
            self.spawn(rec, p)
        self.state["state"] = "running"
        failed = [r for r in self.state["processes"] if r["spawn_error"]]
        if failed:
            self.state["root_cause"] = self.cause(failed[0])
            self.request_stop(f"spawn failed: {failed[0]['name']}")
        self.save()
        keys = ("name", "rank", "role", "pid", "pgid", "log", "spawn_error")
        procs = [{k: r[k] for k in keys} for r in self.state["processes"]]
        with contextlib.suppress(OSError, TypeError):  # no `start` waiting, or it died with its SSH session
            os.write(notify_fd, json.dumps({"supervisor_pid": os.getpid(), "processes": procs}).encode())
            os.close(notify_fd)
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
            time.sleep(0.1)
        left = scan_marked(self.state["job_id"])
        if left:  # grandchildren that left their group, or daemons a rank forgot
            groups = {p["pgid"] for p in left if p["pgid"] == p["pid"]}
            self.state["leftovers"] = terminate(groups, {p["pid"] for p in left}, 2.0)
        stopped = self.stop_requested or os.path.exists(self.marker)
        codes = [r["exit_code"] for r in self.state["processes"]]
        bad = self.state["root_cause"] or (not stopped and any(codes))
        self.state["state"] = "failed" if bad else "stopped" if stopped else "succeeded"
        self.state["ended"] = time.time()
        self.save()
        return {"job": self.state["job_id"], "state": self.state["state"]}


def daemonize(workdir: str, job: str, jdir: str, timeout: float = 60.0) -> Json:
    """Start the supervisor detached (double fork, setsid, exec); its answer once all are spawned."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: new session, then fork again so the daemon can never regain a terminal
        try:
            os.close(r)
            os.setsid()
            if os.fork() > 0:
                os._exit(0)
            os.chdir(jdir)  # the umask stays the caller's: ranks write checkpoints with it
            out = os.open(os.path.join(jdir, "supervisor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            for fd, target in ((os.open(os.devnull, os.O_RDONLY), 0), (out, 1), (out, 2)):
                os.dup2(fd, target)
            os.closerange(3, w)
            os.closerange(w + 1, 65536)
            os.set_inheritable(w, True)
            env = dict(os.environ, **{ENV_JOB: job, ENV_ROLE: "supervisor", ENV_RANK: ""})
            argv = [sys.executable, os.path.abspath(__file__), "--workdir", workdir, "supervise"]
            os.execve(sys.executable, argv + ["--job", job, "--notify-fd", str(w)], env)
        finally:
            os._exit(127)
    os.close(w)
    os.waitpid(pid, 0)
    chunks, deadline = [b""], time.time() + timeout
    while chunks[-1] is not None and select.select([r], [], [], max(0.0, deadline - time.time()))[0]:
        chunks.append(os.read(r, 65536) or None)
    os.close(r)
    try:
        return json.loads(b"".join(c for c in chunks if c))
    except ValueError:
        log = tail_text(os.path.join(jdir, "supervisor.log"), 4096)
        raise AgentError(EXIT_SPAWN, "the supervisor did not report back", supervisor_log=log) from None


# ---------------------------------------------------------------- verbs
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
    try:  # each rank's DEVICE_ID as its process sees the device (ASCEND_RT_VISIBLE_DEVICES, containers)
        spec["device_map"] = npus.map_rank_devices(spec, smi, info, dict(os.environ))
    except ValueError as e:
        raise AgentError(EXIT_USAGE, str(e)) from None
    ports, unit = spec.get("ports") or [], "NPU" if smi else "device"
    os.makedirs(workdir, mode=0o700, exist_ok=True)
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
        conflicts = find_conflicts(workdir, devices, npus.read(smi)[0] if smi and devices else None, ports)
    held = {p for c in conflicts for p in c.get("ports") or []}
    conflicts += npus.ports_in_use(p for p in ports if p not in held)  # a listener we did not start
    if conflicts:
        raise AgentError(EXIT_BUSY, npus.busy_message(conflicts, workdir, unit=unit), conflicts=conflicts)
    if os.path.exists(os.path.join(jdir, "state.json")):
        raise AgentError(EXIT_BUSY, f"job {job} was already started on this node: use a new job id")
    wait = float(spec.get("release_wait_s", RELEASE_WAIT_S))
    released = npus.wait_released(smi, devices, (), wait)  # pids npu-smi still lists but that are gone
    if released["free"] is False:
        listed = [dict(r, source="npu-smi", npu=r["device"], job=None) for r in released["listed"]]
        message = npus.busy_message(listed, workdir, released["waited_s"], unit)
        raise AgentError(EXIT_BUSY, message, conflicts=listed, released=released)
    for d in (workdir, os.path.dirname(jdir), jdir):
        os.makedirs(d, mode=0o700, exist_ok=True)
    os.chmod(jdir, 0o700)
    write_json(os.path.join(jdir, "spec.json"), spec)
    answer = dict(daemonize(workdir, job, jdir), job=job, released=released, device_map=spec["device_map"])
    if any(p["spawn_error"] for p in answer["processes"]):
        raise AgentError(EXIT_SPAWN, "some processes failed to spawn; the job was stopped", **answer)
    return answer


def job_state(st: Json) -> str:
    if is_alive(st.get("supervisor_pid"), st.get("supervisor_start")):
        return "stopping" if st.get("stopping") and st["state"] not in TERMINAL else st["state"]
    return st["state"] if st["state"] in TERMINAL else "unknown"


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


def stop_job(workdir: str, job: str, grace: float, release_wait: Optional[float] = None) -> Json:
    """Stop every process of ``job`` on this node (TERM, grace, KILL); raise if any survives. Then wait,
    at most ``release_wait`` s (default: the spec's), until npu-smi no longer lists a process of the job,
    or one that is gone, on the job's NPUs (``release``: how long, and what is still listed)."""
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
    sigkilled = [str(r["pid"]) for r in st["processes"] if r["signal"] == "SIGKILL"]
    killed.update({pid: "KILL" for pid in sigkilled if pid in killed})  # by the supervisor, maybe
    alive = [r for r in st["processes"] if is_alive(r["pid"], r["start_ticks"])]
    left = scan_marked(job) + [dict(pid=r["pid"], name=r["name"]) for r in alive]
    answer = {"job": job, "state": st["state"], "killed": killed, "left": left, "none_left": not left}
    if left:
        raise AgentError(EXIT_SURVIVORS, f"{len(left)} process(es) of {job} survived", **answer)
    spec = read_json(os.path.join(jdir, "spec.json")) or {}
    wait = float(spec.get("release_wait_s", RELEASE_WAIT_S) if release_wait is None else release_wait)
    own = {r["pid"] for r in st["processes"] if r["pid"]} | {int(pid) for pid in killed}
    answer["release"] = npus.wait_released(npus.find_tool("npu-smi"), spec.get("devices", []), own, wait)
    return answer


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
        released = npus.wait_released(smi, devices, (), args.wait)
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


VERBS: Dict[str, Any] = {  # verb: (function, help, [(flag, argparse options)])
    "start": (cmd_start, "start a job from a spec file", [("--spec", {"required": True}),
              ("--force", {"action": "store_true", "help": "stop earlier jobs' processes first"})]),
    "status": (cmd_status, "state of a job", [("--job", {"required": True}), ("--lines", {"type": int, "default": 20}),
               ("--cpu-sample", {"type": float, "default": 0.1, "help": "seconds to measure CPU %% over"})]),
    "stop": (lambda a: stop_job(a.workdir, a.job, a.grace, a.release_wait), "stop a job, verify nothing is left",
             [("--job", {"required": True}), ("--grace", {"type": float, "default": 10.0}),
              ("--release-wait", {"type": float, "help": "seconds to wait for npu-smi to release the NPUs"})]),
    "list": (cmd_list, "jobs known on this node", []),
    "version": (lambda a: {"version": AGENT_VERSION, "python": sys.version.split()[0]}, "agent version", []),
    "check-devices": (cmd_check_devices, "who holds these NPUs", [("--devices", {"default": ""}),
                      ("--wait", {"type": float, "default": 0.0, "help": "seconds to wait for exited pids"})]),
    "npu-info": (cmd_npu_info, "npu-smi info and info -m as parsed here", [("--ascend-root", {"default": None})]),
    "supervise": (lambda a: Supervisor(a.workdir, a.job).run(a.notify_fd), argparse.SUPPRESS,
                  [("--job", {"required": True}), ("--notify-fd", {"type": int})]),
}  # fmt: skip


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="node_agent.py", description=__doc__.splitlines()[0])
    default = os.environ.get("ORCHESTRATE_AGENT_WORKDIR", os.path.expanduser("~/.orchestrate-node"))
    ap.add_argument("--workdir", default=default, help="agent state folder (start uses the spec's)")
    sub = ap.add_subparsers(dest="verb", required=True)
    for verb, (func, text, options) in VERBS.items():
        p = sub.add_parser(verb, help=text)
        for flag, kw in options:
            p.add_argument(flag, **kw)
        p.set_defaults(func=func)
    args = ap.parse_args(argv)
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
