"""Start a job attempt under Slurm: the node agents as one job step, one task per node.

On a Slurm cluster the processes of a job must live inside a job step, or the scheduler (cgroups)
kills them when the step that started them ends. So each node's agent runs ``start --foreground``:
it answers like ``start`` (on the step's output, one file per node) and then stays, the parent of the
node-side supervisor, until the job's processes end. The step's ``srun`` runs detached on the login
host (it must outlive the controller); the answers are read back from its output files there.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any, Callable, Sequence

from orchestrator.agent.client import StartResult, parse_start
from orchestrator.inventory.model import NodeSpec
from orchestrator.slurm import commands
from orchestrator.slurm.allocation import SlurmError
from orchestrator.transport.base import RunResult, Transport, build_command
from orchestrator.transport.group import GroupResult

NODE_MARK = "@orchestrate-node"
_ENDED = "@orchestrate-srun-ended"


def node_command(nodes: Sequence[NodeSpec], argv_of: Callable[[NodeSpec], list[str]]) -> str:
    """One shell line for every task of the step: each node names itself, then runs its own argv (paths
    may differ from node to node)."""
    cases = " ".join(f"{shlex.quote(n.slurm.node)}) exec {build_command(argv_of(n))};;" for n in nodes)
    return (f'echo "{NODE_MARK} $SLURMD_NODENAME"; case "$SLURMD_NODENAME" in {cases} '
            '*) echo "no command for node $SLURMD_NODENAME" >&2; exit 2;; esac')  # fmt: skip


def detached_step(slurm_job: str, nodes: Sequence[NodeSpec], command: str, out_dir: str) -> str:
    """The login-host shell line that starts the step detached (new session, no terminal); its output,
    every line labelled with its task, goes to ``<out_dir>/start.out``."""
    srun = commands.step_per_node(slurm_job, [n.slurm.node for n in nodes], command)
    srun[1:1] = ["--label", "--chdir=/"]
    inner = f"{build_command(srun)} >start.out 2>srun.log; echo $? >srun.exit"
    return (f"mkdir -p {shlex.quote(out_dir)} && cd {shlex.quote(out_dir)} && rm -f srun.exit && "
            f"(setsid sh -c {shlex.quote(inner)} </dev/null >/dev/null 2>&1 &)")  # fmt: skip


def parse_answers(text: str) -> dict[str, str]:
    """{Slurm node: the agent's first JSON line} from the step's labelled output (``T: line``)."""
    node_of, answers = {}, {}
    for line in text.splitlines():
        task, sep, rest = line.partition(":")
        if not sep or not task.strip().isdigit():
            continue
        rest = rest.strip()
        if rest.startswith(NODE_MARK + " "):
            node_of[task.strip()] = rest[len(NODE_MARK) + 1 :].strip()
        elif rest.startswith("{") and task.strip() in node_of:
            answers.setdefault(node_of[task.strip()], rest)
    return answers


def read_answers(login: Transport, nodes: Sequence[NodeSpec], out_dir: str, timeout: float) -> dict[str, str]:
    """{host: the agent's JSON answer line} once every node answered; SlurmError at ``timeout`` (with
    what srun said)."""
    hosts = {n.slurm.node: n.host for n in nodes}
    deadline = time.monotonic() + timeout
    folder = shlex.quote(out_dir)
    poll = f"cat {folder}/start.out; test -e {folder}/srun.exit && echo {_ENDED} >&2"  # one round trip
    while True:
        r = login.run(["/bin/sh", "-c", poll], check=False, timeout=30)
        answers = {hosts[k]: v for k, v in parse_answers(r.stdout).items() if k in hosts}
        if len(answers) == len(nodes):
            return answers
        ended = _ENDED in r.stderr
        if ended or time.monotonic() > deadline:
            log = login.run(["tail", "-n", "20", f"{out_dir}/srun.log"], check=False).stdout.strip()
            late = sorted(set(hosts.values()) - set(answers))
            raise SlurmError(
                f"no start answer from {', '.join(late)} after {timeout:.0f} s; srun said: {log or '(nothing)'}"
            )
        time.sleep(0.2)


def _exit_code(line: str) -> int:
    """The exit code the agent's answer carries (0 when it succeeded)."""
    try:
        data = json.loads(line)
    except ValueError:
        return 1
    return 0 if data.get("ok") else int(data.get("exit_code", 1))


def start_nodes(login: Transport, nodes: Sequence[NodeSpec], argv_of: Callable[[NodeSpec], list[str]],
                out_dir: str, timeout: float = 180.0) -> GroupResult[StartResult]:  # fmt: skip
    """Start every node's part as one detached step; each node's StartResult (or its error)."""
    slurm_job = nodes[0].slurm.slurm_job
    login.run(
        ["/bin/sh", "-c", detached_step(slurm_job, nodes, node_command(nodes, argv_of), out_dir)], timeout=60
    )
    result: GroupResult[Any] = GroupResult(tuple(n.host for n in nodes))
    try:
        answers = read_answers(login, nodes, out_dir, timeout)
    except SlurmError as exc:
        for n in nodes:
            result.failures[n.host] = exc
        return result
    for n in nodes:
        try:
            code = _exit_code(answers[n.host])
            result.results[n.host] = parse_start(
                RunResult(n.host, "start --foreground", code, answers[n.host], "", 0.0)
            )
        except Exception as exc:  # the agent's refusal (NodeBusy, spawn error) for this node
            result.failures[n.host] = exc
    return result
