"""The reviewable summary of a plan, rendered with rich: nodes, device-to-rank map, strategy,
memory, timeouts, transfers. ``summary_text`` is the same as plain text for summary.txt: every value
whole (tables as wide as their longest row), so it depends on the plan alone."""

from __future__ import annotations

import io
from typing import Optional, Sequence

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from orchestrator.cli.console import make_console
from orchestrator.plan.model import NodePlan, Plan

NODE_ROWS = 32  # up to this many nodes, one row each; more: one row per run of alike nodes


def _span(values: Sequence[int]) -> str:
    """``0..7`` for consecutive values, else the values."""
    if len(values) > 1 and list(values) == list(range(values[0], values[0] + len(values))):
        return f"{values[0]}..{values[-1]}"
    return ",".join(map(str, values))


def _alike(a: NodePlan, b: NodePlan) -> bool:
    """``b`` follows ``a`` in a run: same devices, job folder and kind, ranks counting on."""
    return (b.devices, b.job_dir, b.local) == (a.devices, a.job_dir, a.local) and b.ranks == tuple(
        r + len(a.ranks) for r in a.ranks
    )


def _runs(nodes: Sequence[NodePlan]) -> list[list[NodePlan]]:
    runs: list[list[NodePlan]] = []
    for n in nodes:
        if runs and _alike(runs[-1][-1], n):
            runs[-1].append(n)
        else:
            runs.append([n])
    return runs


def _nodes(plan: Plan) -> Table:
    t = Table(title="Nodes and ranks (rank order = string order of host)", title_justify="left")
    for col in ("host", "hostname", "devices -> ranks", "job folder"):
        t.add_column(col)
    if len(plan.nodes) <= NODE_ROWS:
        for n in plan.nodes:
            mapping = " ".join(f"{d}->{r}" for d, r in zip(n.devices, n.ranks))
            t.add_row(n.host + (" (local)" if n.local else ""), n.name or "-", mapping, n.job_dir)
        return t
    for run in _runs(plan.nodes):
        first, last = run[0], run[-1]
        if len(run) == 1:
            host, name = first.host, first.name or "-"
        else:
            host = f"{first.host} ... {last.host} ({len(run)} nodes)"
            name = f"{first.name} ... {last.name}" if first.name and last.name else "-"
        ranks = _span([r for n in run for r in n.ranks])
        mapping = f"{_span(first.devices)} -> {ranks}" + (
            f" ({len(first.ranks)} per node)" if len(run) > 1 else ""
        )
        t.add_row(host + (" (local)" if first.local else ""), name, mapping, first.job_dir)
    t.caption = (
        f"{len(plan.nodes)} nodes in runs of alike nodes; every rank's node and device: rank_table.json"
    )
    return t


def _files(plan: Plan) -> Text:
    """How the plan folder's per-node files relate (what differs from node to node)."""
    first = plan.nodes[0]
    kinds = {n.yaml_text.replace(n.host, "<host>") for n in plan.nodes}
    same = "the same on every node but for its host" if len(kinds) == 1 else (
        f"{len(kinds)} distinct renderings, one per job folder; within one, nodes differ only in their host")  # fmt: skip
    return Text(
        f"Files: nodes/<host>/ for each of the {len(plan.nodes)} node(s): {first.yaml_name} ({same}), "
        f"commands.sh and env_<process>.sh per process (rank or scheduler: its identity and log paths); "
        f"rank_table_<host>.json: that node's entries of rank_table.json, ranks from 0."
    )


def _strategy(plan: Plan) -> Table:
    s = plan.strategy
    t = Table(title="Strategy", title_justify="left", show_header=False)
    t.add_column("key")
    t.add_column("value")
    rows = [
        ("task / run_mode", f"{plan.task} / {plan.run_mode}"),
        (
            "model",
            f"{plan.model.name}: {plan.model.num_params / 1e9:.2f}B params, {plan.model.num_layers} layers, "
            f"hidden {plan.model.hidden_size}, seq {plan.model.seq_length}",
        ),
        (
            "layout",
            f"dp {s.dp} x mp {s.mp} x pp {s.pp} = {s.world} devices, micro batches {s.micro_batch_num}"
            + (f", interleave {s.micro_batch_interleave_num}" if s.micro_batch_interleave_num > 1 else "")
            + (f", layers per stage {list(plan.memory.stage_layers)}" if s.pp > 1 else ""),
        ),
        ("precision", f"{s.compute_dtype}, loss scale {s.loss_scale}"),
        (
            "settings",
            f"optimizer_shard {s.optimizer_shard}, vocab_emb_dp {s.vocab_emb_dp}, seq_parallel "
            f"{s.seq_parallel}, recompute {s.recompute} (slice {s.recompute_slice})",
        ),
        (
            "launch",
            plan.launch_mode
            + (f", scheduler {plan.scheduler_host}:{plan.sched_port}" if plan.scheduler_host else ""),
        ),
    ]
    for key, value in rows:
        t.add_row(key, value)
    return t


def _memory(plan: Plan) -> Table:
    m = plan.memory
    busiest = f", pipeline stage {m.stage} (the fullest)" if len(m.stage_layers) > 1 else ""
    t = Table(title=f"Memory per device (GB, budget {m.budget_gb:g}{busiest})", title_justify="left")
    parts = [
        ("weights", m.weights_gb),
        ("gradients", m.gradients_gb),
        ("optimizer", m.optimizer_gb),
        ("activations", m.activations_gb),
        ("logits", m.logits_gb),
        ("kv cache", m.kv_cache_gb),
        ("overhead", m.overhead_gb),
        ("total", m.total_gb),
    ]
    for name, _ in parts:
        t.add_column(name, justify="right")
    t.add_row(*(f"{v:.2f}" for _, v in parts))
    note = (
        f"activations without recompute {m.activations_no_recompute_gb:.2f}, with "
        f"{m.activations_recompute_gb:.2f}; headroom {m.headroom_gb:.2f}"
    )
    t.caption = note
    return t


def _timeouts(plan: Plan) -> Table:
    x = plan.timeouts
    t = Table(title="Timeouts (s)", title_justify="left")
    names = ["HCCL_CONNECT", "HCCL_EXEC", "MS_TOPO", "heartbeat", "failure detect", "stop grace", "step est."]
    for name in names:
        t.add_column(name, justify="right")
    t.add_row(
        *(
            str(v)
            for v in (
                x.hccl_connect_s,
                x.hccl_exec_s,
                x.topo_s,
                x.heartbeat_s,
                x.failure_detect_s,
                x.stop_grace_s,
                f"{x.step_estimate_s:.1f}",
            )
        )
    )
    return t


def _transfers(plan: Plan) -> Table:
    """The first node's transfers (its env files on one row); the others get the same at their paths."""
    t = Table(title="Pushed where", title_justify="left")
    for col in ("host", "kind", "from", "to"):
        t.add_column(col, overflow="fold")
    first = plan.nodes[0].host
    mine = [tr for tr in plan.transfers if tr.host == first]
    envs = [tr for tr in mine if tr.source.rsplit("/", 1)[-1].startswith("env_")]
    first_env = envs[0] if envs else None
    for tr in mine:
        if tr is first_env:
            t.add_row(
                tr.host,
                tr.kind,
                f"nodes/{first}/env_*.sh ({len(envs)} files)",
                tr.dest.rsplit("/", 1)[0] + "/",
            )
        elif tr not in envs:
            t.add_row(tr.host, tr.kind, tr.source, tr.dest)
    others = len(plan.nodes) - 1
    if others:
        count = len(plan.transfers) - len(mine)
        t.caption = f"and {count} more transfer(s) of the same kinds to the other {others} node(s)"
    return t


def summary_renderable(plan: Plan) -> Group:
    """Everything a reviewer reads, as one rich renderable."""
    head = Text(
        f"Plan: {plan.task} on {plan.cluster} ({plan.profile}), {len(plan.nodes)} node(s), "
        f"{plan.world_size} device(s); inventory {plan.inventory_source}",
        style="bold",
    )
    parts = [head, _nodes(plan), _strategy(plan), _memory(plan), _timeouts(plan), _transfers(plan)]
    parts.append(_files(plan))
    if plan.overrides:
        parts.append(Text("Overrides: " + " ".join(plan.overrides)))
    parts += [Text(f"note: {n}") for n in plan.notes]
    parts += [Text(f"warning: {w}", style="yellow") for w in plan.warnings]
    return Group(*parts)


def summary_text(plan: Plan) -> str:
    """The summary as plain text, values whole (deterministic; written to summary.txt)."""
    buf = io.StringIO()
    console = make_console(file=buf, color_system=None, force_terminal=False, legacy_windows=False)
    console.print(summary_renderable(plan))
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def print_summary(plan: Plan, console: Optional[Console] = None) -> None:
    """Print the summary (default: stdout, fitted to a terminal, values whole anywhere else)."""
    (make_console() if console is None else console).print(summary_renderable(plan))
