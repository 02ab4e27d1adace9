"""Several jobs of ours on one node: the agent's busy check is per NPU (rank slot on ``cpu``) and per port.
A job is refused only when a live job of ours holds one of its devices or ports (the refusal names that
job and what it holds) or a foreign listener holds one of its ports; ``--force`` stops only the jobs in
the way. The controller's preflight (``launch.start``) reads the agent's ``list`` the same way."""

from __future__ import annotations

import json
import socket

import pytest

from orchestrator.agent.client import JobSpec, ProcessSpec
from orchestrator.agent.node import base as node_base
from orchestrator.agent.node import devices as node_devices
from orchestrator.launch import agent_rpc
from orchestrator.launch.start import NodeNotFree, _preflight_node, in_the_way
from orchestrator.transport.base import RunResult
from tests.agent.conftest import AgentHarness, job_pids

SLEEP = ("--sleep", "60")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jobs_on_disjoint_devices_run_together_and_a_clash_names_the_jobs_and_devices(agent: AgentHarness):
    assert agent.start("job-a", [SLEEP, SLEEP], devices=[0, 1])[0] == 0
    code, started = agent.start("job-b", [SLEEP, SLEEP], devices=[2, 3])
    assert code == 0, started  # another job of ours, other devices: no conflict
    assert agent.status("job-a")["state"] == agent.status("job-b")["state"] == "running"

    code, refused = agent.start("job-c", [SLEEP, SLEEP], devices=[1, 2])
    assert code == node_base.EXIT_BUSY and not refused["ok"], refused
    assert "job job-a of this orchestrator still runs and holds device 1," in refused["error"]
    assert "job job-b of this orchestrator still runs and holds device 2," in refused["error"]
    assert {(c["job"], tuple(c["npus"])) for c in refused["conflicts"]} == {("job-a", (1,)), ("job-b", (2,))}
    assert not (agent.workdir / "jobs" / "job-c").exists()

    code, listing = agent.run("list")
    held = {j["job_id"]: (j["devices"], j["ports"]) for j in listing["jobs"]}
    assert held == {"job-a": ([0, 1], []), "job-b": ([2, 3], [])}

    code, whole = agent.start("job-d", [SLEEP])  # a spec without devices needs the whole node
    assert code == node_base.EXIT_BUSY and {c["job"] for c in whole["conflicts"]} == {"job-a", "job-b"}


def test_force_stops_only_the_jobs_holding_what_the_new_job_needs(agent: AgentHarness):
    assert agent.start("job-a", [SLEEP, SLEEP], devices=[0, 1])[0] == 0
    assert agent.start("job-b", [SLEEP, SLEEP], devices=[2, 3])[0] == 0
    code, forced = agent.start("job-c", [SLEEP], "--force", devices=[1])
    assert code == 0, forced
    assert agent.status("job-a")["state"] == "stopped" and job_pids("job-a") == []
    assert agent.status("job-b")["state"] == "running" and len(job_pids("job-b")) == 3  # 2 ranks + supervisor
    assert agent.status("job-c")["state"] == "running"


def test_a_port_held_by_a_job_of_ours_or_by_a_foreign_listener_refuses_the_start(agent: AgentHarness):
    port = _free_port()
    assert agent.start("job-a", [SLEEP], devices=[0], ports=[port])[0] == 0
    code, refused = agent.start("job-b", [SLEEP], devices=[1], ports=[port])
    assert code == node_base.EXIT_BUSY, refused
    assert f"job job-a of this orchestrator still runs and holds port {port}," in refused["error"]
    assert {(c["job"], tuple(c["npus"]), tuple(c["ports"])) for c in refused["conflicts"]} == {
        ("job-a", (), (port,))
    }

    with socket.socket() as listener:  # a process we did not start listens on the port
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        for flags in ((), ("--force",)):
            code, refused = agent.start("job-c", [SLEEP], *flags, devices=[2], ports=[taken])
            assert code == node_base.EXIT_BUSY, refused
            assert [(c["source"], c["port"]) for c in refused["conflicts"]] == [("port", taken)]
            assert (
                f"port {taken} is in use" in refused["error"] and "--force never stops it" in refused["error"]
            )
    assert agent.status("job-a")["state"] == "running"  # --force touched no job of ours: none was in the way
    code, started = agent.start("job-c", [SLEEP], devices=[2], ports=[taken])
    assert code == 0, started


# ---------------------------------------------------------------- the pure parts, and the controller's side
@pytest.mark.parametrize(
    ("need", "held", "taken"),
    [
        (([0, 1], []), ([2, 3], []), None),
        (([0, 1], []), ([1, 2], []), {"npus": [1], "ports": []}),
        (([0], [8118]), ([1], [8118]), {"npus": [], "ports": [8118]}),
        ((None, []), ([4, 5], []), {"npus": [4, 5], "ports": []}),  # the new job needs the whole node
        (([3], []), (None, []), {"npus": [3], "ports": []}),  # an old spec without devices holds it all
        ((None, []), (None, []), {"npus": None, "ports": []}),
    ],
)
def test_overlap(need, held, taken):
    assert node_devices.overlap(need, held) == taken


def test_describe_names_npus_slots_and_ports():
    assert node_devices.describe([0, 1], [8118]) == "NPU 0, 1 and port 8118"
    assert node_devices.describe([2], [], "device") == "device 2"
    assert node_devices.describe(None, []) == "the whole node"


def test_the_scheduler_port_is_in_the_spec_of_its_node():
    proc = ProcessSpec(argv=("x",), log="/l", rank=0)
    spec = json.loads(JobSpec("j", "h", "/w", (proc,), devices=(4, 5), ports=(8118,)).to_json())
    assert (spec["devices"], spec["ports"]) == ([4, 5], [8118])


class _Node:
    """A transport whose agent answers ``version`` and ``list`` with canned JSON."""

    host = "10.0.0.1"

    def __init__(self, jobs):
        self.jobs, self.ran = jobs, []

    def answer(self, argv):
        verb = next(a for a in argv if a in ("preflight", "stop", "-c"))
        out = {"preflight": {"version": agent_rpc.AGENT_VERSION, "jobs": self.jobs}}.get(verb, {})
        return json.dumps(dict(out, ok=True))

    def run(self, argv, **_kw):
        self.ran.append(argv)
        return RunResult(self.host, " ".join(argv), 0, self.answer(argv), "", 0.0)


def _job(job_id, devices, ports=(), state="running"):
    return {"job_id": job_id, "state": state, "processes": 4, "devices": devices, "ports": list(ports)}


def test_preflight_refuses_only_a_job_holding_a_needed_npu_and_names_it():
    live = [_job("20261204-170000-pretrain-aaaa", [0, 1, 2, 3]), _job("20261204-170100-eval-bbbb", [6, 7])]
    node = _Node(live)
    assert _preflight_node(node, "python3", "/w", False, need=((4, 5), ())) == agent_rpc.AGENT_VERSION
    with pytest.raises(NodeNotFree) as refused:
        _preflight_node(node, "python3", "/w", False, need=((3, 4), ()))
    text = str(refused.value)
    assert (
        "20261204-170000-pretrain-aaaa (running, 4 processes) holds NPU 3" in text and "eval-bbbb" not in text
    )
    assert [j["job_id"] for j, _ in in_the_way(live, ((2, 7), ()))] == [j["job_id"] for j in live]
    old = [{"job_id": "old", "state": "running", "processes": 2}]  # an older agent lists no devices: all held
    assert [j["job_id"] for j, _ in in_the_way(old, ((5,), ()))] == ["old"]
