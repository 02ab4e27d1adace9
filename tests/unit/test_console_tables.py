"""Tables printed off a terminal (pipes, CI logs, click's CliRunner) show every value whole: no "…", no
path cut at 80 columns. On a terminal they still fit the window."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner

from orchestrator.cli.console import UNBOUNDED, make_console, prints_whole
from orchestrator.cli.main import cli
from orchestrator.discover.model import DeviceState, Difference, DiffKind, Discovery, NodeDiscovery
from orchestrator.doctor.checks import CHECKS, Check, Status
from orchestrator.doctor.run import DoctorReport
from orchestrator.inventory import load_inventory
from orchestrator.jobs.model import JobState, JobStatus, NodeStatus, RankStatus, RootCause
from orchestrator.jobs.state import JobDir, JobRecord
from orchestrator.launch.history import jobs_table
from orchestrator.launch.live import render_text
from orchestrator.plan.planner import make_plan
from orchestrator.plan.summary import print_summary

WORKDIR = "/srv/" + "/".join(["a-rather-long-folder-name-for-the-training-runs"] * 3)
HOSTS = tuple(f"node-{k}.training-cluster-with-a-long-name.datacenter.example.internal" for k in (1, 2))
JOB = "20260101-000000-pretrain-abcd"
CAUSE = "EI0006: remote rank 3 did not send in time; " + "the peer on the other side went quiet " * 6


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _inventory_file(tmp_path) -> str:
    ips = lambda k: "[" + ", ".join(f"192.168.{k}.{d + 1}" for d in range(8)) + "]"  # noqa: E731
    nodes = "".join(f"  - host: {h}\n    devices: [0, 1, 2, 3, 4, 5, 6, 7]\n    device_ips: {ips(k)}\n"
                    for k, h in enumerate(HOSTS))  # fmt: skip
    path = tmp_path / "long.yaml"
    path.write_text(
        f"cluster:\n  name: long\n  profile: atlas-800t-a2-64g\n  workdir: {WORKDIR}\n  python: /usr/bin/python3\n"
        "  launch_mode: dynamic_cluster\n"  # hostnames as hosts: a rank table would need their IPs
        "job:\n  train_dataset: " + WORKDIR + "/data/wikipedia-zh-2024-deduplicated.mindrecord\n"
        f"nodes:\n{nodes}"
    )
    return str(path)


def test_the_console_is_unbounded_off_a_terminal_and_window_wide_on_one(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert (
        prints_whole(make_console(file=io.StringIO())) and make_console(file=io.StringIO()).width == UNBOUNDED
    )
    on_terminal = make_console(file=FakeTerminal())
    assert on_terminal.width == 80 and not prints_whole(on_terminal)
    assert make_console(file=io.StringIO(), width=50).width == 50  # an explicit width wins


def test_plan_prints_long_paths_and_hosts_whole(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = _run("plan", _inventory_file(tmp_path), "--out", str(tmp_path / "p"))
    job = f"{WORKDIR}/jobs/long-pretrain"
    for value in (HOSTS[0], job, f"{job}/config/pretrain.yaml", f"{job}/inputs/train_dataset/"
                  "wikipedia-zh-2024-deduplicated.mindrecord.db", f"nodes/{HOSTS[0]}/pretrain.yaml"):  # fmt: skip
        assert value in out
    assert "…" not in out
    summary = (tmp_path / "p" / "summary.txt").read_text()
    assert f"{job}/config/pretrain.yaml" in summary and "…" not in summary


def test_plan_summary_still_fits_a_terminal(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    screen = FakeTerminal()
    plan = make_plan(load_inventory(_inventory_file(tmp_path)), "pretrain")
    print_summary(plan, make_console(file=screen, color_system=None))
    assert max(len(line) for line in screen.getvalue().splitlines()) <= 80


def _doctor_report() -> DoctorReport:
    values = {"disk": f"612.4 GiB free in {WORKDIR}", "versions": "python 3.9.18, mindspore 2.7.1"}
    checks = [Check(h, n, Status.OK, f"detail of {n}", values.get(n, "")) for h in HOSTS for n in CHECKS]
    checks[-1] = Check(HOSTS[-1], CHECKS[-1], Status.WARN, f"port 8118 held by pid 4242 ({WORKDIR}/bin/x)")
    return DoctorReport(HOSTS, tuple(checks))


def test_doctor_prints_hosts_and_values_whole(monkeypatch, repo_root):
    monkeypatch.setattr("orchestrator.doctor.run.run_doctor", lambda *a, **k: _doctor_report())
    out = _run("doctor", str(repo_root / "inventories" / "local-cpu.yaml"))
    assert all(h in out for h in HOSTS) and f"612.4 GiB free in {WORKDIR}" in out
    assert f"port 8118 held by pid 4242 ({WORKDIR}/bin/x)" in out and "…" not in out


def test_discover_prints_hosts_and_differences_whole(monkeypatch, repo_root):
    devices = tuple(DeviceState(d, "910B2", "OK", f"192.168.1.{d + 1}", link="UP", net_health="Success")
                    for d in range(8))  # fmt: skip
    found = Discovery(
        nodes=(
            NodeDiscovery(HOSTS[0], HOSTS[0].replace("node", "hostname"), "npu-smi", "hccn_tool", devices),
        ),
        differences=(
            Difference(HOSTS[0], DiffKind.HOSTNAME, f"expected name {HOSTS[1]}", severity="warning"),
        ),
    )
    monkeypatch.setattr("orchestrator.discover.discover", lambda *a, **k: found)
    out = _run("discover", str(repo_root / "inventories" / "local-cpu.yaml"))
    assert HOSTS[0] in out and HOSTS[0].replace("node", "hostname") in out
    assert f"expected name {HOSTS[1]}" in out and "…" not in out


def _failed_status() -> JobStatus:
    ranks = lambda h, k: (RankStatus(h, f"rank-{k}", k, "exited", exit_code=1),)  # noqa: E731
    nodes = tuple(NodeStatus(h, True, "failed", ranks=ranks(h, k)) for k, h in enumerate(HOSTS))
    cause = RootCause(HOSTS[1], "rank-1", 1, 1, CAUSE, 5.0, ("Traceback", f"{WORKDIR}/model/run.py line 9"))
    return JobStatus(JOB, "pretrain", JobState.FAILED, 100.0, started=40.0, ended=90.0, nodes=nodes,
                     root_cause=cause)  # fmt: skip


@pytest.fixture
def failed_job(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATE_HOME", str(tmp_path / "home"))
    job = JobDir(JOB).create()
    job.save_record(JobRecord(JOB, "pretrain", 40.0, "long.yaml", (), (), (), (), 1.0, 10.0, 3.0))
    assert job.save_status(_failed_status())
    return job


def test_jobs_prints_the_whole_root_cause(failed_job):
    out = _run("jobs")
    assert JOB in out and f"rank-1 on {HOSTS[1]}: {CAUSE.strip()}" in out and "…" not in out


def test_status_prints_hosts_and_root_cause_whole(failed_job):
    out = _run("status", JOB)
    assert all(h in out for h in HOSTS) and f"{WORKDIR}/model/run.py line 9" in out
    assert CAUSE.strip() in out and "…" not in out


def test_live_text_is_whole_unless_a_width_is_given():
    text = render_text(_failed_status())
    assert all(h in text for h in HOSTS) and "…" not in text
    narrow = render_text(_failed_status(), width=60)
    assert max(len(line) for line in narrow.splitlines()) <= 60


def test_jobs_table_cuts_the_root_cause_only_for_a_terminal():
    row = {"job_id": JOB, "state": "failed", "attempts": "1/1", "resumed_from": None, "ranks": 2,
           "nodes": 2, "duration_s": 50.0, "root_cause": CAUSE}  # fmt: skip
    whole, cut = io.StringIO(), io.StringIO()
    make_console(file=whole).print(jobs_table([row], whole=True))
    make_console(file=cut).print(jobs_table([row]))
    assert CAUSE.strip() in whole.getvalue() and CAUSE[:120].strip() in cut.getvalue()
    assert CAUSE[:130] not in cut.getvalue()
