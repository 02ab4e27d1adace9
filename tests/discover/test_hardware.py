"""The chips on a node against the inventory's profile (name and HBM from npu-smi), refused by
discovery, `plan --discover` and `doctor` with the reason; Atlas A3 chips with their SuperPoD ids read
by discovery and planned into a v1.2 rank table."""

from __future__ import annotations

import json

import pytest

from orchestrator.cli.main import main
from orchestrator.discover import DiffKind, discover
from orchestrator.doctor import Status, run_doctor
from orchestrator.plan.planner import make_plan
from orchestrator.transport import TransportPool
from tests.discover.conftest import inventory
from tests.fixtures.captures import capture
from tests.transport.fake import FakeNode

B4_32G = "npu-smi_info_910B4_25.3.rc1_8npu_idle.txt"  # an Atlas 800I A2 (910B4, 32 GB)
B3_64G = "npu-smi_info_910B3_25.2.0_8npu_idle_plus_one_unnamed.txt"
A3 = "npu-smi_info_A3_Ascend910_24.1.rc3.5_8npu_16chips.txt"
EIGHT = "[0, 1, 2, 3, 4, 5, 6, 7]"
INVENTORY = """\
cluster:
  name: t
  profile: {profile}
  workdir: /opt/w
  python: /usr/bin/python3
nodes:
  - host: 10.0.0.1
    name: n1
"""


def _hardware(found):
    return [d for d in found.differences if d.kind == DiffKind.HARDWARE]


def test_an_800i_a2_node_in_an_800t_a2_inventory_is_refused_with_the_reason():
    inv = inventory(nodes=f"  - host: 10.0.0.1\n    devices: {EIGHT}\n")
    found = discover(inv, transports={"10.0.0.1": FakeNode("10.0.0.1", "n1", capture(B4_32G))})
    (diff,) = _hardware(found)
    assert diff.severity == "error" and not found.ok
    assert "NPU 0-7: 910B4 with 32 GB HBM" in diff.message
    assert "profile atlas-800t-a2-64g" in diff.message and "with 64 GB HBM" in diff.message
    assert "this node fits atlas-800i-a2-32g" in diff.message
    assert found.node("10.0.0.1").devices[0].hbm_total_mb == 32768


def test_matching_chips_give_no_hardware_difference():
    found = discover(
        inventory(nodes=f"  - host: h\n    devices: {EIGHT}\n"),
        transports={"h": FakeNode("h", "x", capture(B3_64G))},
    )
    assert _hardware(found) == []
    as_800i = discover(
        inventory("atlas-800i-a2-32g", nodes=f"  - host: h\n    devices: {EIGHT}\n"),
        transports={"h": FakeNode("h", "x", capture(B4_32G))},
    )
    assert _hardware(as_800i) == [] and as_800i.node("h").driver_version == "25.3.rc1"


def test_a_910a_node_is_not_an_a2():
    found = discover(
        inventory(nodes="  - host: h\n    devices: [0, 1, 2, 3]\n"),
        transports={
            "h": FakeNode("h", "x", capture("npu-smi_info_910A_23.0.rc1.b070_4npu_warning_testfixture.txt"))
        },
    )
    (diff,) = _hardware(found)
    assert "910A with 32 GB HBM" in diff.message and "atlas-800-32g" in diff.message


@pytest.fixture
def written(tmp_path, monkeypatch):
    """Write an inventory file and answer discovery/doctor's SSH with ``nodes`` (host -> FakeNode)."""
    from orchestrator import discover as discover_pkg
    from orchestrator.doctor import run as doctor_run

    monkeypatch.chdir(tmp_path)
    real_discover, real_doctor = discover_pkg.discover, doctor_run.run_doctor

    def write(profile: str, nodes: dict) -> str:
        path = tmp_path / "inv.yaml"
        path.write_text(INVENTORY.format(profile=profile))
        monkeypatch.setattr(discover_pkg, "discover", lambda inv, **kw: real_discover(inv, transports=nodes))
        monkeypatch.setattr(
            doctor_run, "run_doctor", lambda inv, **kw: real_doctor(inv, pool=TransportPool(nodes), **kw)
        )
        return str(path)

    return write


def test_plan_discover_and_doctor_refuse_an_800i_node_as_800t(written, capsys):
    path = written("atlas-800t-a2-64g", {"10.0.0.1": FakeNode("10.0.0.1", "n1", capture(B4_32G))})
    assert main(["plan", path, "--task", "predict", "--discover"]) == 2
    err = capsys.readouterr().err
    assert "910B4 with 32 GB HBM" in err and "atlas-800i-a2-32g" in err
    assert main(["doctor", path, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    npus = report["nodes"]["10.0.0.1"]["npus"]
    assert npus["status"] == "FAIL" and "910B4 with 32 GB HBM" in npus["detail"]
    assert report["nodes"]["10.0.0.1"]["cann"]["status"] == "ok"


def test_an_a3_node_is_discovered_chip_by_chip_with_its_superpod_ids():
    inv = inventory("atlas-900-a3-64g", nodes="  - host: 10.0.0.1\n    name: a3\n")
    node = FakeNode("10.0.0.1", "a3", capture(A3), server_index=4, super_pod_id=2)
    found = discover(inv, transports={"10.0.0.1": node})
    n = found.node("10.0.0.1")
    assert n.device_ids == tuple(range(16)) and found.differences == ()
    chip = n.device(13)  # NPU 6, chip 1: Chip Phy-ID 13
    assert (chip.npu_id, chip.chip_id, chip.name, chip.hbm_total_mb) == (6, 1, "Ascend910", 65536)
    assert chip.super_device_id == str(4 << 22 | 6 << 18 | 1 << 16 | 13) and n.super_pod_id == "2"
    asked = node.calls[1][2]
    assert "npu-smi info -t spod-info -i 6 -c 1" in asked
    assert "hccn_tool -i 15 -ip -g" in asked


def test_an_a3_node_is_planned_with_a_v12_table():
    inv = inventory("atlas-900-a3-64g", nodes="  - host: 10.0.0.1\n    name: a3\n")
    found = discover(inv, transports={"10.0.0.1": FakeNode("10.0.0.1", "a3", capture(A3), server_index=4)})
    plan = make_plan(inv, "pretrain", discovered=found)
    table = json.loads(plan.rank_table_text)
    (server,) = table["server_list"]
    assert table["version"] == "1.2" and table["super_pod_list"][0]["super_pod_id"] == "0"
    assert [d["device_id"] for d in server["device"]] == [str(d) for d in range(16)]
    assert server["device"][0]["super_device_id"] == str(4 << 22)
    assert server["device"][15]["device_ip"] == "10.9.0.15" and server["host_ip"] == "10.0.0.1"


def test_an_a3_chip_without_spod_info_is_an_error():
    inv = inventory("atlas-900-a3-64g", nodes="  - host: h\n")
    node = FakeNode(
        "h", "a3", capture(A3), spod={(3, 1): (0, "This device does not support querying spod-info.\n")}
    )
    found = discover(inv, transports={"h": node})
    (diff,) = [d for d in found.differences if d.kind == DiffKind.SUPER_POD]
    assert diff.device == 7 and "super device id" in diff.message and not found.ok
    assert any("spod-info" in note and "not support" in note for note in found.node("h").notes)


def test_doctor_on_an_a3_node_checks_the_chips():
    inv = inventory("atlas-900-a3-64g", nodes="  - host: h\n")
    report = run_doctor(inv, pool=TransportPool({"h": FakeNode("h", "a3", capture(A3))}))
    assert report.get("h", "npus").status == Status.OK and report.get("h", "npus").value == "16 NPU(s)"
