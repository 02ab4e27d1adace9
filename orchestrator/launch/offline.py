"""Launching through the offline resharding flow (``reshard.flow``), for a job that loads a checkpoint on
more than 8 devices without shared storage, which MindFormers will not reshard on the fly.

Steps 1-4 run here, each announced with its number: the strategy-only run (a job of its own, followed
to its end; it must succeed), gather, transform, push. Step 5, the launch of the final plan, is the
caller's ordinary launch. The actions come in a ``FlowActions`` so tests can pass fakes; the defaults
launch real jobs and move real files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from orchestrator.errors import JobFailed
from orchestrator.plan.model import Plan
from orchestrator.reshard import OfflineFlow, flow_gather, flow_push, flow_transform

Report = Callable[[str], None]


@dataclass(frozen=True)
class FlowActions:
    """What each step does. ``strategy_run`` launches a plan, waits for it and returns the plan as the
    job ran it (bound to its output folder, where the strategy files are)."""

    strategy_run: Callable[[Plan], Plan]
    gather: Callable[[OfflineFlow], Any]
    transform: Callable[[OfflineFlow], Any]
    push: Callable[[OfflineFlow], Any]


def default_actions(nodes: Sequence[Any], run_job: Callable[[Plan], Plan]) -> FlowActions:
    """The real steps on ``nodes`` (NodeSpecs); ``run_job`` launches and follows one job."""
    return FlowActions(
        strategy_run=run_job,
        gather=lambda flow: flow_gather(flow, nodes),
        transform=flow_transform,
        push=lambda flow: flow_push(flow, nodes),
    )


def run_offline(flow: OfflineFlow, actions: FlowActions, say: Report) -> Plan:
    """Run steps 1-4 of ``flow`` in order; the final plan, ready for step 5 (the launch)."""
    steps = {s.number: s for s in flow.steps}

    def announce(n: int) -> None:
        say(f"[{n}/{len(steps)}] {steps[n].name}: {steps[n].summary}")

    announce(1)
    try:
        ran = actions.strategy_run(flow.strategy_plan)
    except JobFailed as exc:
        raise JobFailed(f"offline flow stopped at step 1 (strategy run): {exc}") from None
    flow = replace(flow, strategy_plan=ran)  # the strategy files are in the job's own output folder
    for n, act in ((2, actions.gather), (3, actions.transform), (4, actions.push)):
        announce(n)
        act(flow)
    announce(5)
    return flow.final_plan
