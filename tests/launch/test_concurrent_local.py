"""Two CPU jobs at once on this machine (the embedded default's local node, stand-in ranks): on the
``cpu`` profile devices are rank slots, so jobs on slots 0-1 and 2-3 run together, each with its own
scheduler port, run folder and logs; a third on slots 1-2 is refused before anything is written, naming
both jobs and the slots they hold. The agents run in a private scope (other agents on this host unseen)."""

from __future__ import annotations

import pytest

from orchestrator.agent.node import base as node_base
from orchestrator.jobs.state import JobDir
from orchestrator.launch.start import launch
from orchestrator.launch.stop import stop_job
from orchestrator.transport.group import GroupError
from tests.agent.conftest import job_pids
from tests.launch.conftest import local_stand_in_plan, placeholder_dataset


@pytest.fixture
def local(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(node_base.ENV_SCOPE, f"concurrent-{tmp_path.name}")
    data = placeholder_dataset(tmp_path)
    return tmp_path, data


def test_two_cpu_jobs_on_disjoint_rank_slots_run_together(local):
    tmp_path, data = local
    started = []
    try:
        for slots in ([0, 1], [2, 3]):
            started.append(launch(*local_stand_in_plan(tmp_path, data, slots)))
        first, second = (s.job.job_id for s in started)
        assert all(len(job_pids(j)) == 4 for j in (first, second))  # supervisor, scheduler, 2 ranks each
        logs = [{p.log for p in s.record.processes} for s in started]
        assert not logs[0] & logs[1]
        assert all(f"/runs/{s.job.job_id}/" in log for s, own in zip(started, logs) for log in own)
        ports = [s.job.plan().sched_port for s in started]
        assert ports[0] != ports[1]

        with pytest.raises(GroupError) as refused:
            launch(*local_stand_in_plan(tmp_path, data, [1, 2]))
        text = str(refused.value)
        assert refused.value.exit_code == 5, text
        assert (
            f"{first} (running, 3 processes) holds device 1" in text
            and f"{second} (running, 3 processes) holds device 2" in text
        )
        assert len(list((tmp_path / "home" / "jobs").iterdir())) == 2  # nothing recorded for the refused job
    finally:
        for s in started:
            stop_job(JobDir(s.job.job_id), grace=2.0)
    assert all(job_pids(s.job.job_id) == [] for s in started)
