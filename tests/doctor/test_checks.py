"""Doctor's checks as pure functions, and run_doctor over fake nodes."""

from __future__ import annotations

import dataclasses
import json

import pytest

from orchestrator.discover.model import Difference, DiffKind, NodeDiscovery
from orchestrator.doctor import Limits, Status, job_ports, run_doctor
from orchestrator.doctor.checks import (
    CHECKS,
    check_clock,
    check_disk,
    check_ports,
    check_versions,
    checks_from_differences,
)
from orchestrator.doctor.facts import NodeFacts
from orchestrator.errors import TransportError
from orchestrator.transport import TransportPool
from tests.discover.conftest import inventory
from tests.fixtures.captures import capture
from tests.transport.fake import FakeNode

FACTS = NodeFacts(
    "h",
    "n1",
    0.01,
    0.05,
    "3.11.2",
    "/usr/bin/python3",
    (("mindspore", "2.7.1"), ("mindformers", "1.7.0")),
    "/opt/w",
    50 * 2**30,
    (),
)


def _facts(**kw) -> NodeFacts:
    return dataclasses.replace(FACTS, **kw)


@pytest.mark.parametrize(
    "offset, error, status",
    [
        (0.01, 0.05, Status.OK),
        (-4.9, 0.0, Status.OK),
        (7.0, 0.1, Status.FAIL),
        (-6.0, 0.5, Status.FAIL),
        (-5.2, 0.5, Status.OK),
        (5.2, 0.5, Status.FAIL),
    ],
)
def test_clock_skew(offset, error, status):
    assert (
        check_clock(_facts(clock_offset_s=offset, clock_error_s=error), Limits(max_clock_skew_s=5)).status
        == status
    )


def test_clock_detail_reports_seconds():
    check = check_clock(_facts(clock_offset_s=-7.25, clock_error_s=0.0), Limits())
    assert "-7.25 s" in check.detail and "limit 5 s" in check.detail


@pytest.mark.parametrize("gib, status", [(50, Status.OK), (7, Status.WARN), (2, Status.FAIL)])
def test_disk(gib, status):
    check = check_disk(_facts(disk_free_bytes=gib * 2**30), Limits(min_free_gb=5))
    assert check.status == status and "/opt/w" in check.detail


def test_ports():
    assert check_ports(_facts(), [8118, 60000, 60001]).detail == "8118, 60000-60001 free"
    busy = check_ports(_facts(busy_ports=(60003,)), [60003])
    assert busy.status == Status.FAIL and "60003" in busy.detail
    assert check_ports(_facts(), []).status == Status.SKIP


def test_versions_majority_and_missing():
    nodes = [
        _facts(host="a"),
        _facts(host="b"),
        _facts(host="c", packages=(("mindspore", "2.6.0"), ("mindformers", "1.7.0"))),
        _facts(host="d", packages=(("mindspore", "2.7.1"), ("mindformers", None))),
    ]
    by_host = {c.host: c for c in check_versions(nodes)}
    assert by_host["a"].status == by_host["b"].status == Status.OK
    assert by_host["c"].status == Status.FAIL and "mindspore 2.6.0 (others 2.7.1)" in by_host["c"].detail
    assert by_host["d"].status == Status.FAIL and "mindformers not installed" in by_host["d"].detail


def test_differences_become_checks():
    node = NodeDiscovery("h", "n1", "/usr/local/bin/npu-smi", "/x/hccn_tool")
    diffs = [
        Difference("h", DiffKind.LINK_DOWN, "device NIC link is DOWN", 3),
        Difference("h", DiffKind.BUSY_NPU, "held by 42 (python)", 1, severity="warning"),
        Difference("h", DiffKind.UNHEALTHY_NPU, "health is Warning", 2, severity="warning"),
    ]
    checks = {c.name: c for c in checks_from_differences([node], diffs)}
    assert checks["nics"].status == Status.FAIL and checks["nics"].detail == "NPU 3: device NIC link is DOWN"
    assert checks["npu_procs"].status == Status.FAIL  # a process still holding an NPU fails the preflight
    assert checks["npus"].status == Status.WARN
    assert checks["hostname"].status == Status.OK
    bare = {c.name: c.status for c in checks_from_differences([NodeDiscovery("h", "n1")], [])}
    assert bare == {"hostname": Status.OK, "npus": Status.SKIP, "npu_procs": Status.SKIP, "nics": Status.SKIP}


def test_job_ports_follow_launch_mode_and_profile():
    assert job_ports(inventory("cpu", nodes="  - host: a\n    devices: [0]\n")) == (8118,)
    a2 = job_ports(inventory(nodes="  - host: a\n    devices: [0]\n"))
    assert a2 == tuple(range(60000, 60016))


def _doctor(nodes: dict, profile="cpu", refuse=(), **kw):
    def factory(node):
        raise TransportError(f"root@{node.host}:22: no answer within 10s")

    text = "".join(f"  - host: {h}\n    devices: [0, 1]\n" for h in list(nodes) + list(refuse))
    return run_doctor(inventory(profile, nodes=text), pool=TransportPool(nodes, factory=factory), **kw)


def test_run_doctor_all_ok_and_json():
    report = _doctor({"a": FakeNode("a", "na"), "b": FakeNode("b", "nb")})
    assert not report.failed and report.count(Status.FAIL) == 0
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] and data["nodes"]["a"]["versions"]["status"] == "ok"
    assert data["nodes"]["b"]["npus"]["status"] == "skip"


def test_run_doctor_finds_every_problem():
    b3 = capture("npu-smi_info_910B3_25.2.0_8npu_idle_plus_one_unnamed.txt")
    nodes = {
        "a": FakeNode("a", "same", b3, facts={"busy_ports": [8118], "time": 0}),
        "b": FakeNode(
            "b",
            "same",
            b3,
            hccn={(1, "link"): (0, "link status: DOWN\n")},
            subnet="10.9.1",
            facts={"packages": {"mindspore": "2.7.0", "mindformers": "1.7.0"}},
        ),
        "c": FakeNode("c", "nc", probe_exit=127),
    }
    report = _doctor(nodes, refuse=("d",))
    st = {(c.host, c.name): c.status for c in report.checks}
    assert st[("a", "hostname")] == st[("b", "hostname")] == Status.FAIL  # duplicate hostnames
    assert st[("a", "clock")] == Status.FAIL and st[("a", "ports")] == Status.FAIL
    assert st[("b", "versions")] == Status.FAIL and st[("b", "nics")] == Status.FAIL
    assert st[("c", "versions")] == Status.FAIL and "python" in report.get("c", "versions").detail
    assert st[("d", "ssh")] == Status.FAIL and st[("d", "disk")] == Status.SKIP
    assert st[("a", "npu_procs")] == Status.OK  # NPU 2's process is not on devices 0, 1
    assert report.failed and len(report.checks) == 4 * len(CHECKS)


def test_strict_turns_warnings_into_failure():
    nodes = {"a": FakeNode("a", "na", facts={"disk_free": 7 * 2**30})}
    assert not _doctor(nodes).failed
    assert _doctor(nodes, strict=True).failed
