"""Silent-node detection follows the plan's timeout policy: minutes on Ascend, seconds on the CPU rehearsal;
recorded in the job record and the agent spec, and used by the watcher (no node is touched)."""

from __future__ import annotations

import time

import pytest

from orchestrator.jobs.model import JobState, NodeStatus
from orchestrator.jobs.state import JobDir
from orchestrator.launch.nodes import JobNodes
from orchestrator.launch.spec import node_spec
from orchestrator.launch.start import make_record
from orchestrator.launch.watcher import Watcher
from orchestrator.plan.planner import make_plan
from tests.plan.helpers import A2, CPU, make_inventory

SILENT_S = 60.0  # longer than the rehearsal's detection, far shorter than a 13B graph compile


def _plan(profile: str):
    inv = make_inventory(A2) if profile == A2 else make_inventory(CPU, devices=2, ips=False, model="tiny")
    return inv, make_plan(inv, "pretrain")


def test_the_policy_waits_minutes_on_ascend_and_seconds_on_cpu():
    a2, cpu = _plan(A2)[1].timeouts, _plan(CPU)[1].timeouts
    assert a2.failure_detect_s >= 180 and a2.heartbeat_s == 5.0
    assert cpu.failure_detect_s == 20.0 and cpu.heartbeat_s == 1.0
    assert a2.problems() == cpu.problems() == []


@pytest.mark.parametrize("profile", [A2, CPU])
def test_the_record_and_the_agent_spec_carry_the_plans_values(profile):
    inv, plan = _plan(profile)
    record = make_record("20260101-000000-pretrain-0001", plan, inv, 0.0)
    assert (record.failure_detect_s, record.heartbeat_s) == (
        plan.timeouts.failure_detect_s,
        plan.timeouts.heartbeat_s,
    )
    spec = node_spec(plan, plan.nodes[0], "20260101-000000-pretrain-0001", "/opt/spark", "/opt/spark/code/x")
    assert spec.heartbeat_s == plan.timeouts.heartbeat_s


@pytest.mark.parametrize("profile, expected", [(A2, JobState.RUNNING), (CPU, JobState.FAILED)])
def test_the_monitor_declares_a_node_lost_after_the_plans_time(profile, expected, tmp_path, monkeypatch):
    inv, plan = _plan(profile)
    job = JobDir("20260101-000000-pretrain-0001", tmp_path).create()
    job.save_record(make_record(job.job_id, plan, inv, time.time()))
    host = plan.nodes[0].host
    silent = {host: NodeStatus(host, False, "running", time.time() - SILENT_S, "no answer")}
    monkeypatch.setattr(Watcher, "latest", property(lambda self: silent))
    with JobNodes(job.record().nodes) as nodes:
        watcher = Watcher(job, nodes, poll_s=0.0)
        monkeypatch.setattr(watcher, "open", lambda: watcher)  # no channel: the node is silent
        monkeypatch.setattr(watcher, "fail_fast", lambda verdict: verdict)  # its Assessment, nothing stopped
        outcome = watcher.step()
    assert outcome is not None and outcome.state == expected, (profile, outcome)
