"""A real Slurm in the simulated cluster (slurmctld on the host, slurmd in each node, jobs as the job
user), and the backend's Slurm layer through it: allocation, steps on each node, release."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.fixtures.sim import cluster_up, needs_slurm, sim_name, ssh_client

pytestmark = [
    pytest.mark.cluster,
    needs_slurm,
]


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator:
    with cluster_up("s", nodes=2, with_slurm=True) as cluster:
        yield cluster


@pytest.fixture
def login(slurm_cluster):
    """The first node as the login host, over SSH as the job user (sbatch/srun as a user runs them)."""
    from orchestrator.transport import SshOptions, SshTransport

    opts = SshOptions(user=slurm_cluster.user, key=str(slurm_cluster.key),
                      known_hosts=str(slurm_cluster.known_hosts), connect_timeout=10)  # fmt: skip
    t = SshTransport(slurm_cluster.nodes[0].host, opts).connect()
    yield t
    t.close()


def test_srun_runs_in_every_node_as_the_job_user(slurm_cluster):
    client = ssh_client(slurm_cluster, slurm_cluster.nodes[0], timeout=10)
    try:  # a node's login shell: no SLURM_CONF needed, as on a real cluster
        _, out, err = client.exec_command(
            "srun -N2 sh -c 'echo $(hostname) $(id -un) $(hostname -I)'", timeout=60
        )
        lines = sorted(out.read().decode().splitlines())
        assert out.channel.recv_exit_status() == 0, err.read().decode()
    finally:
        client.close()
    assert lines == sorted(f"{n.hostname} {slurm_cluster.user} {n.host}" for n in slurm_cluster.nodes)


def test_allocation_steps_and_release(slurm_cluster, login):
    from orchestrator.slurm import allocation
    from orchestrator.slurm.settings import SlurmSettings
    from orchestrator.slurm.steps import StepTransport

    work = "/tmp/" + sim_name("alloc")
    login.run(["mkdir", "-p", work])
    alloc = allocation.allocate(login, "job-1", 2, 0, SlurmSettings(partition="npu", time_limit="5"), work,
                                timeout=60)  # fmt: skip
    try:
        assert alloc.owned and sorted(alloc.nodes) == sorted(n.hostname for n in slurm_cluster.nodes)
        for node in alloc.nodes:
            t = StepTransport(login, alloc.slurm_job, node)
            r = t.run(["sh", "-c", 'echo "$(hostname) $X $(pwd)"'], env={"X": "it's"}, cwd="/")
            assert r.stdout.strip() == f"{node} it's /"
            path = f"/home/{slurm_cluster.user}/step-file"
            t.put_bytes(b"\x00payload\n", path, mode=0o640)
            assert t.run(["stat", "-c", "%a %U", path]).stdout.split() == ["640", slurm_cluster.user]
            assert t.run(["cat", path]).stdout == "\x00payload\n"
            assert t.run(["false"], check=False).exit_code == 1
        job = allocation.show(login, alloc.slurm_job)
        assert job.state == "RUNNING" and job.time_limit == "00:05:00"
    finally:
        allocation.release(login, alloc)
    job = allocation.wait_ended(login, alloc.slurm_job, 30)
    assert job is None or job.state == "CANCELLED"


def test_a_refused_allocation_says_what_slurm_said(login):
    from orchestrator.slurm import allocation
    from orchestrator.slurm.settings import SlurmSettings

    with pytest.raises(allocation.SlurmError, match="(?i)sbatch refused.*partition"):
        allocation.allocate(login, "job-2", 1, 0, SlurmSettings(partition="nosuch"), "/tmp", timeout=10)


def test_down_removes_slurmctld_and_the_spool():
    from orchestrator import sim
    from orchestrator.sim import slurm

    name = sim_name("d")
    sim.up(name, nodes=1, with_slurm=True)
    conf = slurm.conf_path(name)
    assert subprocess.run(["pgrep", "-f", f"slurmctld -f {conf}"], capture_output=True).returncode == 0
    sim.down(name)
    assert subprocess.run(["pgrep", "-f", f"slurmctld -f {conf}"], capture_output=True).returncode == 1
    assert not slurm.spool_dir(name).exists()


def test_plan_on_an_allocation_the_user_holds(slurm_cluster, login, tmp_path):
    import sys

    from orchestrator.sim import slurm as sim_slurm
    from orchestrator.slurm import allocation
    from orchestrator.slurm.settings import SlurmSettings

    work = "/tmp/" + sim_name("salloc")
    login.run(["mkdir", "-p", work])
    held = allocation.allocate(login, "by-hand", 2, 0, SlurmSettings(partition="npu"), work, timeout=60)
    try:
        inv = tmp_path / "inv.yaml"
        text = sim_slurm.inventory_path(slurm_cluster.name).read_text()
        inv.write_text(text.replace("partition: npu}", f"partition: npu, job_id: {held.slurm_job}}}"))
        orchestrate = str(Path(sys.executable).with_name("orchestrate"))
        res = subprocess.run([orchestrate, "plan", str(inv), "--task", "pretrain", "--set", "job.model=tiny", "--json", "--out",
                              str(tmp_path / "plan")], capture_output=True, text=True, timeout=300)  # fmt: skip
        assert res.returncode == 0, res.stderr
        hosts = [n["host"] for n in json.loads(res.stdout)["nodes"]]
        assert sorted(hosts) == sorted(n.host for n in slurm_cluster.nodes)  # read on the nodes, by job steps
        assert allocation.show(login, held.slurm_job).state == "RUNNING"  # the user's allocation stays
    finally:
        allocation.release(login, held)
