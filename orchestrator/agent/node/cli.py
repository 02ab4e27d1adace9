"""The node agent's command line: ``python orchestrate-agent-<sha>.pyz [--workdir DIR] <verb> ...``.

Answers one JSON object on stdout (``ok`` plus data, or ``error``), exit codes ``EXIT_*``
(``orchestrator.agent.node.base``). Verbs: start (``--foreground``: answer, then stay the parent of the
supervisor until it ends, for a Slurm job step), status, stop, watch, list, version, preflight
(version and list; ``--then-stage``: then one ``stage``), check-devices, npu-info, stage (a job's small files from one bundle on stdin, and
the start). The supervisor a start leaves behind is that call forked (``supervisor.daemonize``). Each
verb's module is imported only when run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
from typing import Any, Dict, List, Optional

from orchestrator.agent.node.base import AGENT_VERSION, EXIT_ERROR, EXIT_OK, AgentError, Json


def cmd_version(args: argparse.Namespace) -> Json:
    return {"version": AGENT_VERSION, "python": sys.version.split()[0]}


def cmd_preflight(args: argparse.Namespace) -> Json:
    """``version`` and ``list`` in one answer: what the controller checks before a launch.

    ``--free-port ADDRESS``: with a port free now there (``free_port``). ``--then-stage``: print that answer, then wait (at most ``--wait`` s) for one line on stdin, a
    ``stage`` bundle, and answer as ``stage`` would: a launch's two round trips in one process and one
    SSH session (the controller sends the bundle once every node passed its preflight). Nothing
    staged when stdin ends or the wait runs out."""
    from orchestrator.agent.node.verbs import cmd_list

    answer = dict(cmd_version(args), **cmd_list(args))
    if args.free_port:  # a port free now on that address (the scheduler's, when the plan pins none)
        import socket

        with socket.socket() as s:
            s.bind((args.free_port, 0))
            answer["free_port"] = s.getsockname()[1]
    if not args.then_stage:
        return answer
    print(json.dumps(dict(answer, ok=True), sort_keys=True, default=str), flush=True)
    import select

    if not select.select([sys.stdin], [], [], args.wait)[0]:
        return {"staged": None, "why": f"no stage request within {args.wait:g} s"}
    line = sys.stdin.buffer.readline()
    if not line.strip():
        return {"staged": None, "why": "no stage request: the controller went away"}
    from orchestrator.agent.node.stage import stage_bundle

    return stage_bundle(line, args.workdir)


def cmd_stop(args: argparse.Namespace) -> Json:
    from orchestrator.agent.node.stop import stop_job

    return stop_job(args.workdir, args.job, args.grace, args.release_wait)


VERBS: Dict[str, Any] = {  # verb: (function or "module:function", help, [(flag, argparse options)])
    "start": ("start:cmd_start", "start a job from a spec file", [("--spec", {"required": True}),
              ("--force", {"action": "store_true", "help": "stop earlier jobs' processes first"}),
              ("--foreground", {"action": "store_true", "help": "answer, then stay until the supervisor "
                                "ends (a Slurm job step)"})]),
    "status": ("verbs:cmd_status", "state of a job", [("--job", {"required": True}), ("--lines", {"type": int, "default": 20}),
               ("--cpu-sample", {"type": float, "default": 0.1, "help": "seconds to measure CPU %% over"})]),
    "stop": (cmd_stop, "stop a job, verify nothing is left",
             [("--job", {"required": True}), ("--grace", {"type": float, "default": 10.0}),
              ("--release-wait", {"type": float, "help": "seconds to wait for npu-smi to release the NPUs"})]),
    "watch": ("verbs:cmd_watch", "stream a job's events, take its commands on stdin", [("--job", {"required": True}),
              ("--after", {"type": int, "default": 0, "help": "resume after this journal seq"}),
              ("--heartbeat", {"type": float, "default": 1.0, "help": "seconds between heartbeats"})]),
    "stage": ("stage:cmd_stage", "write a job's small files from a JSON bundle on stdin (then, when the "
              "bundle says so and its code is there, start the job)", []),
    "list": ("verbs:cmd_list", "jobs known on this node", []),
    "version": (cmd_version, "agent version", []),
    "preflight": (cmd_preflight, "agent version and the jobs known on this node", [
                  ("--then-stage", {"action": "store_true", "help": "then take one stage bundle as a line on stdin"}),
                  ("--wait", {"type": float, "default": 600.0, "help": "seconds to wait for it"}),
                  ("--free-port", {"metavar": "ADDRESS", "help": "also name a port free now on this address"})]),
    "check-devices": ("verbs:cmd_check_devices", "who holds these NPUs", [("--devices", {"default": ""}),
                      ("--wait", {"type": float, "default": 0.0, "help": "seconds to wait for exited pids"})]),
    "npu-info": ("verbs:cmd_npu_info", "npu-smi info and info -m as parsed here", [("--ascend-root", {"default": None})]),
}  # fmt: skip


def _verb(argv: List[str]) -> Optional[str]:
    """The verb ``argv`` names (the first word that is no option or ``--workdir``'s value), None if unknown."""
    skip = False
    for arg in argv:
        if skip or arg.startswith("-"):
            skip = arg == "--workdir"
            continue
        return arg if arg in VERBS else None
    return None


def _function(func: Any) -> Any:
    """A verb's function; ``"module:function"`` names one in this package, imported now."""
    if not isinstance(func, str):
        return func
    module, name = func.split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="orchestrate-agent", description=__doc__.splitlines()[0])
    default = os.environ.get("ORCHESTRATE_AGENT_WORKDIR", os.path.expanduser("~/.orchestrate-node"))
    ap.add_argument("--workdir", default=default, help="agent state folder (start uses the spec's)")
    sub = ap.add_subparsers(dest="verb", required=True)
    asked = _verb(sys.argv[1:] if argv is None else argv)  # only its parser is built: a call's start is short
    for verb, (func, text, options) in VERBS.items() if asked is None else [(asked, VERBS[asked])]:
        p = sub.add_parser(verb, help=text)
        for flag, kw in options:
            p.add_argument(flag, **kw)
        p.set_defaults(func=func)
    args = ap.parse_args(argv)
    try:
        answer, code = dict(_function(args.func)(args), ok=True), EXIT_OK
    except AgentError as e:
        answer, code = dict(e.extra, ok=False, error=str(e), exit_code=e.code), e.code
    except Exception as e:  # report, never a bare traceback: the controller parses stdout
        answer, code = {"ok": False, "error": f"{type(e).__name__}: {e}", "exit_code": EXIT_ERROR}, EXIT_ERROR
    print(json.dumps(answer, sort_keys=True, default=str), flush=True)
    child = answer.get("supervisor_child")
    if child:  # start --foreground: this process is the job step; it lasts as long as the supervisor
        return _wait_foreground(int(child))
    return code


def _wait_foreground(child: int) -> int:
    """Wait for the supervisor child; a TERM or INT (Slurm ending the step) is passed on to it."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: os.kill(child, s))
    while True:
        try:
            _, status = os.waitpid(child, 0)
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code
        except InterruptedError:
            continue
