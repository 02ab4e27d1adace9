"""The Slurm backend's pure parts: host lists, `scontrol show job`, settings checks, command lines."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError
from orchestrator.slurm import commands, hostlist
from orchestrator.slurm.jobinfo import parse_show_job
from orchestrator.slurm.settings import SlurmSettings

SHOW = (
    "JobId=41 JobName=orchestrate-j1 UserId=spark(2000) GroupId=spark(2000) JobState=TIMEOUT Reason=TimeLimit "
    "Dependency=(null) ExitCode=0:15 RunTime=00:01:02 TimeLimit=00:01:00 Partition=npu "
    "NodeList=node[01-02,7] BatchHost=node01 NumNodes=3 Command=/x WorkDir=/home/spark Power="
)


@pytest.mark.parametrize(
    "text, hosts",
    [
        ("node[1-3]", ["node1", "node2", "node3"]),
        ("node[01-02,7],login", ["node01", "node02", "node7", "login"]),
        ("a[1-2]b[3-4]", ["a1b3", "a1b4", "a2b3", "a2b4"]),
        ("(null)", []),
        ("x9", ["x9"]),
    ],
)
def test_hostlist_expand(text, hosts):
    assert hostlist.expand(text) == hosts


def test_hostlist_compress_round_trips():
    hosts = ["n1", "n2", "n3", "n5", "n07", "n08", "login"]
    assert hostlist.compress(hosts) == "n[1-3,5],n[07-08],login"
    assert hostlist.expand(hostlist.compress(hosts)) == hosts


@pytest.mark.parametrize("bad", ["node[1-", "node]1", "node[3-1]", "node[a-b]"])
def test_hostlist_refuses_malformed(bad):
    with pytest.raises(InputError, match="host list"):
        hostlist.expand(bad)


def test_show_job_is_read_with_its_cause():
    job = parse_show_job(SHOW)
    assert (job.job_id, job.state, job.reason, job.signal) == ("41", "TIMEOUT", "TimeLimit", 15)
    assert job.nodes == ("node01", "node02", "node7") and job.ended
    assert job.cause == "Slurm ended the allocation at its time limit"
    running = parse_show_job(SHOW.replace("TIMEOUT", "RUNNING"))
    assert not running.ended and running.cause is None


def test_settings_name_the_field_and_the_fix():
    assert SlurmSettings(partition="npu", time_limit="1-02:00:00").check() is not None
    with pytest.raises(InputError, match=r"slurm\.time_limit: '2h'.*HH:MM:SS"):
        SlurmSettings(time_limit="2h").check()
    with pytest.raises(InputError, match=r"slurm\.partition"):
        SlurmSettings(partition="a b").check()
    with pytest.raises(InputError, match=r"slurm\.job_id"):
        SlurmSettings(job_id="12;rm").check()


def test_allocation_script_asks_for_what_the_settings_say():
    s = SlurmSettings(partition="npu", account="lab", qos="high", time_limit="2:00:00", gres="npu")
    text = commands.allocation_script("j1", 4, 8, s, "/w/slurm-%j.out")
    for line in ("#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=1", "#SBATCH --partition=npu",
                 "#SBATCH --account=lab", "#SBATCH --qos=high", "#SBATCH --time=2:00:00",
                 "#SBATCH --gres=npu:8", "#SBATCH --exclusive", "#SBATCH --job-name=orchestrate-j1"):  # fmt: skip
        assert line in text.splitlines()
    assert "--gres" not in commands.allocation_script("j1", 1, 8, SlurmSettings(), "/o")


def test_steps_quote_the_command_once():
    argv = commands.step_on_node("7", "n1", "echo 'a b'")
    assert argv[:3] == ["srun", "--jobid=7", "--overlap"] and argv[-3:] == ["/bin/sh", "-c", "echo 'a b'"]
    assert "--nodelist=n1" in argv


def test_addresses_prefer_the_resolved_configured_one():
    from orchestrator.slurm.nodes import parse_addresses

    text = "n1|127.0.1.1 10.0.0.11 |192.168.9.1 10.0.0.11 \nn2||10.0.0.12 \nbad line\nn3|127.0.0.1|\n"
    assert parse_addresses(text) == {"n1": "10.0.0.11", "n2": "10.0.0.12"}


def test_start_step_runs_each_nodes_own_command_and_reads_labelled_answers():
    from orchestrator.inventory.model import NodeSpec, SshSettings
    from orchestrator.slurm.settings import SlurmRoute
    from orchestrator.slurm.start_step import NODE_MARK, detached_step, node_command, parse_answers

    nodes = [NodeSpec(f"10.0.0.{i}", f"n{i}", (0,), (), SshSettings(), "/w", "/py", (),
                      slurm=SlurmRoute("local", "7", f"n{i}")) for i in (1, 2)]  # fmt: skip
    line = node_command(nodes, lambda n: [n.python, "agent.pyz", "start", "--spec", f"/w/{n.name} x.json"])
    assert "n1) exec /py agent.pyz start --spec '/w/n1 x.json';;" in line and '"$SLURMD_NODENAME"' in line
    step = detached_step("7", nodes, line, "/o/d")
    assert "--jobid=7" in step and "--label" in step and "--nodelist=n1,n2" in step and "setsid" in step
    out = (
        f'1: {NODE_MARK} n2\n0: {NODE_MARK} n1\n1: {{"ok": true, "job": "b"}}\n0: {{"ok": true}}\n0: noise\n'
    )
    assert parse_answers(out) == {"n2": '{"ok": true, "job": "b"}', "n1": '{"ok": true}'}


def test_slurm_inventory_errors_name_the_field(tmp_path):
    from orchestrator.inventory import load_inventory

    path = tmp_path / "inv.yaml"
    base = "cluster: {name: c, profile: cpu, workdir: /w, python: /p, scheduler: slurm, slurm: %s}\n"
    path.write_text(base % "{nodes: 2, time_limit: 2h, partition: npu}")
    with pytest.raises(InputError, match=r"cluster\.slurm\.time_limit"):
        load_inventory(str(path))
    path.write_text(base % "{nodes: 2, devices: 1, partition: npu, login: login01}")
    inv = load_inventory(str(path))
    assert inv.nodes == () and inv.cluster.slurm.nodes == 2 and inv.cluster.slurm.login == "login01"
    path.write_text(
        "cluster: {name: c, profile: cpu, workdir: /w, python: /p, slurm: {nodes: 1}}\nnodes: [{host: h}]\n"
    )
    with pytest.raises(InputError, match=r"without `scheduler: slurm`"):
        load_inventory(str(path))
