"""The environment CANN's scripts give a rank, computed once per node at launch (docs/ascend-cluster.md §7).

A non-login SSH command (and so the node agent and its ranks) gets none of CANN's variables. At launch
(in the same ``bash`` as the agent's ``preflight``: one round trip) each node sources ``<ascend_root>/ascend-toolkit/set_env.sh`` (required when the node has an
``ascend_root``) and ``<ascend_root>/nnal/atb/set_env.sh`` (when present) in one ``bash`` over the
transport, and prints its environment before and after: what the scripts added or changed is passed
to every rank of that node (``launch.spec``) and recorded in the job's state folder
(``node-env.json``, 0600; collect-logs copies it). ``PYTHONPATH`` is always the sourced value (CANN's
entries, then the node's own), so a rank's PYTHONPATH extends it instead of replacing it.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from typing import Mapping, NoReturn, Optional, Sequence

from orchestrator.errors import InputError, Problem, RemoteCommandError
from orchestrator.inventory.model import TOOLKIT_SET_ENV, cann_scripts
from orchestrator.jobs.state import JobDir
from orchestrator.transport import RunResult, Stream, Transport

STATE_FILE = "node-env.json"
MISSING_EXIT = 3
_MARK = "--orchestrate-sourced--"
_AGENT_MARK = "--orchestrate-agent-answered--"
_END_MARK = "--orchestrate-environment-read--"
_SHELL_OWN = {"_", "SHLVL", "PWD", "OLDPWD"}  # bash's own bookkeeping, not the scripts'

# $1: the toolkit's script ("" on a node without CANN), $2: nnal/atb's, then an optional command run
# first in the plain environment (the agent's ``preflight``). Prints, NUL-separated: that command's
# output (stdout and stderr), its exit code and a mark (only with a command); the plain environment, a
# mark, the scripts sourced (":"-joined), the sourced environment. Positional parameters are cleared
# before sourcing (nnal's script reads its own), the scripts' output goes to stderr, and our shell
# variables have names no script uses.
_SOURCE = f"""env -0
printf '%s\\0' '{_MARK}'
__orch_used=
if [ -n "$__orch_tk" ]; then
  if [ ! -f "$__orch_tk" ]; then echo "$__orch_tk: no such file" >&2; exit {MISSING_EXIT}; fi
  . "$__orch_tk" >&2
  __orch_used=$__orch_tk
  if [ -f "$__orch_atb" ]; then . "$__orch_atb" >&2; __orch_used="$__orch_used:$__orch_atb"; fi
fi
printf '%s\\0' "$__orch_used"
env -0
"""
_PROBE = f"""__orch_tk=$1 __orch_atb=$2
shift 2
if [ $# -gt 0 ]; then "$@" 2>&1; printf '\\0%s\\0%s\\0' "$?" '{_AGENT_MARK}'; fi
set --
{_SOURCE}"""

# The same, for a command that keeps running (``open_after``): the scripts sourced in a subshell (the
# command runs in the plain environment), then an end mark and a newline, then ``exec`` of the
# command, whose output follows.
_PROBE_THEN = f"""__orch_tk=$1 __orch_atb=$2
shift 2
(
set --
{_SOURCE}) || exit $?
printf '\\0%s\\n' '{_END_MARK}'
exec "$@"
"""


def scripts(ascend_root: Optional[str]) -> tuple[str, str]:
    """(toolkit set_env.sh, nnal/atb set_env.sh) under ``ascend_root``; ("", "") without one."""
    return cann_scripts(ascend_root) if ascend_root else ("", "")


@dataclass(frozen=True)
class NodeEnv:
    """One node's sourced environment: ``env`` holds what the scripts set or changed, plus the
    node's PYTHONPATH (CANN's entries first) when it has one."""

    host: str
    ascend_root: Optional[str] = None
    sourced: tuple[str, ...] = ()  # the scripts sourced, in order
    env: Mapping[str, str] = field(default_factory=dict)


class MissingCann(InputError):
    """A node's ``set_env.sh`` is not where its ``ascend_root`` says."""


def _parse(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if sep and name:
            out[name] = value
    return out


def diff(plain: Mapping[str, str], sourced: Mapping[str, str]) -> dict[str, str]:
    """Variables ``sourced`` adds or changes against ``plain`` (sorted), PYTHONPATH always when set."""
    out = {k: v for k, v in sourced.items() if plain.get(k) != v and k not in _SHELL_OWN}
    if sourced.get("PYTHONPATH"):
        out["PYTHONPATH"] = sourced["PYTHONPATH"]
    return dict(sorted(out.items()))


def probe(t: Transport, ascend_root: Optional[str], source: str = "inventory") -> NodeEnv:
    """Source the node's CANN scripts once and return what they set; MissingCann when the toolkit's
    script is absent (``source``: the inventory, named in the problem)."""
    return probe_after(t, ascend_root, source)[0]


def probe_after(t: Transport, ascend_root: Optional[str], source: str = "inventory",
                first: Sequence[str] = ()) -> tuple[NodeEnv, Optional[RunResult]]:  # fmt: skip
    """``probe``, running the command ``first`` before it in the same round trip (in the plain
    environment); its result (stdout and stderr merged), None without one."""
    toolkit, atb = scripts(ascend_root)
    res = t.run(["bash", "-c", _PROBE, "orchestrate-node-env", toolkit, atb, *first], check=False, timeout=60)
    items, before = res.stdout.split("\0"), None
    if first and _AGENT_MARK in items:
        at = items.index(_AGENT_MARK)
        out = "\0".join(items[: at - 1])
        before = RunResult(t.host, shlex.join(first), int(items[at - 1]), out, out, res.duration_s)
        items = items[at + 1 :]
    if res.exit_code != 0 or _MARK not in items or (first and before is None):
        _refuse(t.host, toolkit, source, res.exit_code, res.stderr)
    return _env(t.host, ascend_root, items), before


def open_after(t: Transport, ascend_root: Optional[str], source: str,
               command: Sequence[str]) -> tuple[NodeEnv, Stream]:  # fmt: skip
    """``probe``, then ``command`` started in the plain environment in the same SSH session and left
    running: the environment, and the command's stream (its output next)."""
    toolkit, atb = scripts(ascend_root)
    stream = t.open_stream(["bash", "-c", _PROBE_THEN, "orchestrate-node-env", toolkit, atb, *command])
    try:
        out, end = b"", f"\0{_END_MARK}\n".encode()
        while not out.endswith(end):
            line = stream.readline(60)
            if not line:  # bash ended before the mark: a missing script, or no bash
                done = stream.wait(30)
                _refuse(t.host, toolkit, source, done.exit_code, done.stderr.decode(errors="replace"))
            out += line
        return _env(t.host, ascend_root, out[: -len(end)].decode(errors="replace").split("\0")), stream
    except BaseException:
        stream.close()
        raise


def _refuse(host: str, toolkit: str, source: str, code: int, stderr: str) -> NoReturn:
    """MissingCann when the toolkit's script was missing, else the error of a probe that failed."""
    if code == MISSING_EXIT and toolkit:
        raise MissingCann([missing_problem(host, toolkit, source)])
    what = f"sourcing {toolkit}" if toolkit else "reading the environment"
    raise RemoteCommandError(host, what, code, "", stderr)


def _env(host: str, ascend_root: Optional[str], items: Sequence[str]) -> NodeEnv:
    """The NodeEnv of a probe's output items (plain environment, mark, scripts sourced, sourced one)."""
    if _MARK not in items:
        raise RemoteCommandError(host, "reading the environment", 0, "", "no environment printed")
    at = items.index(_MARK)
    used = tuple(s for s in items[at + 1].split(":") if s) if at + 1 < len(items) else ()
    return NodeEnv(host, ascend_root, used, diff(_parse(items[:at]), _parse(items[at + 2 :])))


def missing_problem(host: str, toolkit: str, source: str) -> Problem:
    root = toolkit[: -len(TOOLKIT_SET_ENV) - 1]
    return Problem(
        source,
        "cluster.ascend_root",
        f"node {host} has no {toolkit}: its ranks would start without CANN's environment "
        f"(ascend_root {root})",
        "install the CANN toolkit there, or set `cluster.ascend_root` (or that node's `ascend_root`) "
        "to the folder holding ascend-toolkit/ (a non-root install: <home>/Ascend)",
    )


def merged_problems(failures: Mapping[str, BaseException]) -> Optional[InputError]:
    """One InputError listing every node's missing script, when every failure is one (else None)."""
    if failures and all(isinstance(e, MissingCann) for e in failures.values()):
        return InputError([p for e in failures.values() for p in e.problems])  # type: ignore[attr-defined]
    return None


def save(job: JobDir, envs: Sequence[NodeEnv]) -> None:
    """Record every node's sourced environment in the job's state folder (0600)."""
    data = {e.host: dict(asdict(e), sourced=list(e.sourced), env=dict(e.env)) for e in envs}
    job.write(STATE_FILE, json.dumps(data, indent=1, sort_keys=True) + "\n")


def load(job: JobDir) -> dict[str, NodeEnv]:
    """The recorded environments by host ({} for a job launched before they were recorded)."""
    text = job.read(STATE_FILE)
    if not text:
        return {}
    return {
        h: NodeEnv(h, d.get("ascend_root"), tuple(d.get("sourced", ())), dict(d.get("env", {})))
        for h, d in json.loads(text).items()
    }
