"""Binding a plan to one job and attempt: what ``launch`` decides at staging, outside ``make_plan``.

``make_plan`` stays pure and knows no job id; launching binds its output (the "base plan") to the job:

- ``output_dir`` gets the job id as a last folder (``<output_dir>/<job_id>``), so a fresh job never sees
  the checkpoints of earlier jobs of the same cluster and task, while every attempt of one job shares it;
- the job's own files on each node (rendered YAML, rank table, env files, ``commands.sh``, the code-folder
  note, rank and MindFormers logs, MindIR, the ranks' working directory) move from the plan's job folder
  ``<workdir>/jobs/<cluster>-<task>/`` into ``<that>/runs/<job_id>/``, so two jobs of the same task
  running at once on other NPUs of a node share no file; the inputs (``inputs/``, pushed with a manifest,
  unchanged files skipped) stay shared;
- the dynamic-cluster scheduler port, when launch picked a free one (the user set none);
- for a resumed attempt: ``load_checkpoint`` at ``<output>/<resume_dir>`` (one checkpoint per rank
  folder, prepared on the nodes), ``resume_training`` on, ``auto_trans_ckpt`` off (same layout), and
  ``resume_by_last_timestamp_ckpt`` (each rank loads the one file of its folder: MindFormers' by-meta
  search needs a Barrier op the CPU backend lacks). The original ``load_checkpoint`` is not staged again.

``bind_plan`` is pure: same base plan and binding, same bound plan. It edits only the top-level keys our
templates render (``templates/base.yaml.j2``), the workers' argv flags and ``MS_SCHED_PORT``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Optional

from orchestrator.plan.model import NodePlan, Plan, RankLaunch
from orchestrator.plan.render import yaml_scalar
from orchestrator.reshard.strategy_files import node_output_dir

RESUME_FLAGS = ("--load_checkpoint", "--resume", "--auto_trans_ckpt")


@dataclass(frozen=True)
class Binding:
    """What ties a base plan to one job attempt."""

    job_id: str
    sched_port: Optional[int] = None  # None: the plan's
    resume_dir: Optional[str] = None  # relative to the job's output folder; None: not resuming


# The job's own files under a plan's job folder (moved into its run folder); inputs/ and output/ stay.
OWN = ("config/", "rank_table.json", "env/", "commands.sh", "output/log", "output/mindir")


def run_dir(job_dir: str, job_id: str) -> str:
    """Where job ``job_id`` keeps its own files on a node whose plan's job folder is ``job_dir``."""
    return f"{job_dir.rstrip('/')}/runs/{job_id}"


def relocate(text: str, old: str, new: str) -> str:
    """``text`` with every path of the job's own files (``OWN``) under ``old`` moved under ``new``."""
    for rel in OWN:
        text = text.replace(f"{old}/{rel}", f"{new}/{rel}")
    return text


def job_output_dir(node: NodePlan, job_id: str) -> str:
    """The job's output folder on ``node`` (``node`` from the base plan)."""
    return f"{node_output_dir(node)}/{job_id}"


def set_top_key(text: str, key: str, value: object, after: Optional[str] = None) -> str:
    """``text`` with the top-level ``key: value`` line set; a missing key goes after the ``after`` key.
    ValueError when the key appears more than once or can be placed nowhere."""
    line = f"{key}: {yaml_scalar(value)}"
    pattern = re.compile(rf"^{re.escape(key)}:.*$", re.M)
    found = pattern.findall(text)
    if len(found) > 1:
        raise ValueError(f"the YAML has {len(found)} top-level {key!r} lines")
    if found:
        return pattern.sub(lambda _m: line, text)
    anchor = re.compile(rf"^{re.escape(after)}:.*$", re.M) if after else None
    m = anchor.search(text) if anchor else None
    if m is None:
        raise ValueError(f"no top-level {key!r} line, and nowhere to put one")
    return text[: m.end()] + "\n" + line + text[m.end() :]


def _argv(argv: tuple[str, ...], resume: Optional[str]) -> tuple[str, ...]:
    if resume is None:
        return argv
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in RESUME_FLAGS and i + 1 < len(argv):
            skip = True
            continue
        out.append(arg)
    return tuple(out) + ("--load_checkpoint", resume, "--resume", "True", "--auto_trans_ckpt", "False")


def _launch(x: RankLaunch, port: Optional[int], resume: Optional[str], old: str, new: str) -> RankLaunch:
    env = tuple((k, relocate(v, old, new)) for k, v in x.env)
    if port is not None and any(k == "MS_SCHED_PORT" for k, _ in env):
        env = tuple((k, str(port) if k == "MS_SCHED_PORT" else v) for k, v in env)
    argv = tuple(relocate(a, old, new) for a in _argv(x.argv, resume))
    return replace(x, env=env, argv=argv, cwd=new if x.cwd == old else relocate(x.cwd, old, new),
                   log_dir=relocate(x.log_dir, old, new), stdout=relocate(x.stdout, old, new))  # fmt: skip


def _node(node: NodePlan, b: Binding) -> NodePlan:
    out = job_output_dir(node, b.job_id)
    text = set_top_key(node.yaml_text, "output_dir", out)
    resume = f"{out}/{b.resume_dir}" if b.resume_dir else None
    if resume:
        text = set_top_key(text, "load_checkpoint", resume)
        text = set_top_key(text, "auto_trans_ckpt", False)
        text = set_top_key(text, "resume_training", True)
        text = set_top_key(text, "resume_by_last_timestamp_ckpt", True, after="resume_training")
    old, new = node.job_dir.rstrip("/"), run_dir(node.job_dir, b.job_id)
    launches = tuple(_launch(x, b.sched_port, resume, old, new) for x in node.launches)
    return replace(node, yaml_text=relocate(text, old, new), launches=launches, job_dir=new)


def bind_plan(base: Plan, b: Binding) -> Plan:
    """``base`` as job ``b.job_id`` runs it (see the module docstring)."""
    nodes = tuple(_node(n, b) for n in base.nodes)
    moved = {n.host: (n.job_dir.rstrip("/"), run_dir(n.job_dir, b.job_id)) for n in base.nodes}
    transfers = tuple(
        replace(t, dest=relocate(t.dest, *moved[t.host])) if t.kind == "generated" and t.host in moved else t
        for t in base.transfers
    )
    if b.resume_dir:  # the job's own checkpoints replace the one it started from
        transfers = tuple(
            t for t in transfers if not (t.kind == "input" and "/inputs/load_checkpoint/" in t.dest)
        )
    job = replace(base.job, output_dir=f"{base.job.output_dir.rstrip('/')}/{b.job_id}")
    if b.resume_dir:
        job = replace(job, resume=True, auto_trans_ckpt=False)
    port = base.sched_port
    if b.sched_port is not None and base.sched_port is not None:
        port = b.sched_port
        job = replace(job, sched_port=b.sched_port)
    return replace(base, nodes=nodes, transfers=transfers, job=job, sched_port=port)


def user_set_port(plan: Plan) -> bool:
    """True when the inventory or ``--set`` chose the scheduler port (launch then keeps it)."""
    return any(o.split("=", 1)[0].strip() == "job.sched_port" for o in plan.overrides)
