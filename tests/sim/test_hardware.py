"""Loading, validating and saving the simulated hardware file (fast, no cluster)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from orchestrator.errors import InputError
from orchestrator.sim import hardware as hw


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_default_hardware_is_8_idle_910b3_per_node_in_one_subnet_each():
    h = hw.default_hardware(["x-node1", "x-node2"])
    assert [n.name for n in h.nodes] == ["x-node1", "x-node2"]
    n2 = h.nodes[1]
    assert n2.device_ids == list(range(8))
    assert n2.device_ips[0] == "192.168.102.10" and n2.device_ips[7] == "192.168.102.17"
    assert {n.gateway for n in n2.npus} == {"192.168.102.1"}
    assert all(n.link == "UP" and n.health == "OK" and not n.processes for n in n2.npus)
    assert n2.npus[2].bus_id == "0000:81:00.0"


def test_load_variants_4_npus_broken_nic_duplicate_ip_and_process(tmp_path: Path):
    doc = {
        "npu_smi_version": "25.5.1",
        "nodes": [
            {"npus": [{"id": i, "ip": f"10.1.1.{i}"} for i in range(4)]},
            {
                "npus": [
                    {"id": 0, "ip": "10.1.1.0", "link": "DOWN", "net_health": "Fault"},
                    {
                        "id": 1,
                        "ip": "10.1.2.1",
                        "processes": [{"pid": 42, "name": "python", "memory_mb": 900}],
                    },
                ]
            },
        ],
    }
    h = hw.with_names(hw.load(_write(tmp_path, doc)), ["c-node1", "c-node2"])
    assert h.npu_smi_version == "25.5.1" and len(h.nodes[0].npus) == 4
    broken = h.node("c-node2").npus[0]
    assert (broken.link, broken.net_health, broken.ip) == ("DOWN", "Fault", h.nodes[0].npus[0].ip)
    assert h.nodes[1].npus[1].processes == (hw.NpuProcess(42, "python", 900),)
    assert h.nodes[1].npus[1].gateway == "10.1.2.1"  # first host of 10.1.2.1/24 is .1


def test_invalid_file_reports_every_problem_at_once(tmp_path: Path):
    doc = {
        "nodes": [
            {"npus": [{"id": 0, "ip": "300.1.1.1", "link": "SIDEWAYS", "colour": "red"}, {"ip": "10.0.0.1"}]}
        ]
    }
    with pytest.raises(InputError) as err:
        hw.load(_write(tmp_path, doc))
    fields = {p.field for p in err.value.problems}
    assert {
        "nodes[0].npus[0].ip",
        "nodes[0].npus[0].link",
        "nodes[0].npus[0].colour",
        "nodes[0].npus[1].id",
    } <= fields
    assert all(p.file.endswith("hw.yaml") for p in err.value.problems)


def test_too_few_nodes_and_bad_types_are_input_errors(tmp_path: Path):
    one = hw.load(_write(tmp_path, {"nodes": [{"npus": [{"id": 0, "ip": "10.0.0.1"}]}]}))
    with pytest.raises(InputError, match="describes 1 node"):
        hw.with_names(one, ["a", "b"])
    with pytest.raises(InputError):
        hw.parse({"nodes": [{"npus": [{"id": "zero", "ip": "10.0.0.1"}]}]})
    with pytest.raises(InputError):
        hw.parse({"nodes": []})


def test_save_writes_yaml_and_json_twin_that_round_trip(tmp_path: Path):
    h = hw.default_hardware(["a", "b"], devices=2)
    hw.save(h, tmp_path / "hardware.yaml")
    assert hw.load(tmp_path / "hardware.yaml") == h
    twin = json.loads((tmp_path / "hardware.json").read_text())
    assert twin == dict(h.to_dict(), nodes=[hw.node_dict(h, i) for i in range(2)])
    assert twin["nodes"][1]["kind"] == "cpu" and twin["nodes"][1]["server_index"] == 1


def test_kinds_set_chips_hbm_and_the_inventory_profile(tmp_path: Path):
    a2 = hw.default_hardware(["n1"], kind="atlas-800t-a2")
    assert a2.inventory_profile == "atlas-800t-a2-64g" and len(a2.nodes[0].npus) == 8
    assert {(n.chip_name, n.hbm_total_mb) for n in a2.nodes[0].npus} == {("910B3", 65536)}
    a3 = hw.default_hardware(["n1"], kind="atlas-900-a3")
    assert a3.inventory_profile == "atlas-900-a3-64g" and len(a3.nodes[0].npus) == 16
    assert hw.default_hardware(["n1"]).inventory_profile == "cpu"
    doc = {  # an 800I A2 node (910B4, 32 GB) among 800T A2 ones, CANN elsewhere, faster release
        "kind": "atlas-800t-a2",
        "ascend_root": "/opt/Ascend",
        "cann_version": "8.2.RC1",
        "npu_release_s": 0.5,
        "nodes": [
            {"npus": [{"id": 0, "ip": "10.1.1.10"}]},
            {"kind": "atlas-800i-a2-32g", "npus": [{"id": 0, "ip": "10.1.2.10"}, {"id": 1, "ip": "10.1.2.11", "chip_name": "910B9"}]},
        ],
    }  # fmt: skip
    h = hw.load(_write(tmp_path, doc))
    assert (h.ascend_root, h.cann_version, h.npu_release_s, h.inventory_profile) == (
        "/opt/Ascend", "8.2.RC1", 0.5, "atlas-800t-a2-64g")  # fmt: skip
    assert (h.nodes[0].npus[0].chip_name, h.nodes[0].npus[0].hbm_total_mb) == ("910B3", 65536)
    assert [(n.chip_name, n.hbm_total_mb) for n in h.nodes[1].npus] == [("910B4", 32768), ("910B9", 32768)]
    assert hw.node_dict(h, 1)["kind"] == "atlas-800i-a2-32g" and hw.node_dict(h, 0)["kind"] == "atlas-800t-a2"
    hw.save(h, tmp_path / "again.yaml")
    assert hw.load(tmp_path / "again.yaml") == h


def test_bad_settings_are_problems(tmp_path: Path):
    doc = {"kind": "dgx", "ascend_root": "opt/Ascend", "npu_release_s": "soon", "colour": 1,
           "nodes": [{"kind": "tpu", "npus": [{"id": 0, "ip": "10.0.0.1"}]}]}  # fmt: skip
    with pytest.raises(InputError) as err:
        hw.load(_write(tmp_path, doc))
    assert {p.field for p in err.value.problems} == {
        "kind",
        "ascend_root",
        "npu_release_s",
        "colour",
        "nodes[0].kind",
    }
