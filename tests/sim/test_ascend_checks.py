"""Checks of a real node, run against the simulated cluster's Ascend mode (needs root): an Atlas 800I A2
node in an 800T A2 inventory is refused by doctor and by `plan --discover` with the reason; a wrong
CANN location is named by doctor with its fix; `launch --force` leaves a process it did not start alone
and names it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tests.fixtures.sim import ascend_pair
from tests.fixtures.sim import orchestrate as _cli

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def mixed_pair(tmp_path_factory) -> Iterator[object]:
    """Two A2 nodes, planned as Atlas 800T A2; the second is really an 800I A2 (910B4, 32 GB)."""
    yield from ascend_pair(tmp_path_factory.mktemp("mixed"), "m", 190, node_kinds=("", "atlas-800i-a2-32g"))


def _inventory(cluster, tmp_path: Path, **cluster_settings) -> Path:
    doc = yaml.safe_load(Path(cluster.inventory).read_text())
    doc["cluster"].update(cluster_settings)
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_an_800i_node_in_an_800t_inventory_is_refused_with_the_reason(mixed_pair, tmp_path):
    inventory = _inventory(mixed_pair, tmp_path)
    assert yaml.safe_load(inventory.read_text())["cluster"]["profile"] == "atlas-800t-a2-64g"
    second = mixed_pair.nodes[1].address
    doctor = _cli(tmp_path, "doctor", str(inventory), "--json")
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    report = json.loads(doctor.stdout)
    npus = {host: checks["npus"] for host, checks in report["nodes"].items()}
    assert npus[second]["status"] == "FAIL" and npus[mixed_pair.nodes[0].address]["status"] == "ok"
    problems = json.dumps(report)
    assert "910B4" in problems and "atlas-800i-a2-32g" in problems

    plan = _cli(tmp_path, "plan", str(inventory), "--task", "predict", "--discover", "--set", "job.model=tiny",
                "--out", str(tmp_path / "plan"))  # fmt: skip
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert second in plan.stderr and "910B4" in plan.stderr and not (tmp_path / "plan").exists()


def test_a_wrong_cann_location_is_named_by_doctor_with_the_fix(mixed_pair, tmp_path):
    inventory = _inventory(mixed_pair, tmp_path, ascend_root="/opt/Ascend")
    doctor = _cli(tmp_path, "doctor", str(inventory), "--json")
    assert doctor.returncode == 1
    report = json.loads(doctor.stdout)
    for host, checks in report["nodes"].items():
        cann = json.dumps(checks["cann"])
        assert checks["cann"]["status"] == "FAIL" and "/opt/Ascend" in cann and "ascend_root" in cann, host
    right = _cli(tmp_path, "doctor", str(_inventory(mixed_pair, tmp_path)), "--json")
    assert {c["cann"]["status"] for c in json.loads(right.stdout)["nodes"].values()} == {"ok"}


def test_force_leaves_a_process_it_did_not_start_alone_and_names_it(mixed_pair, tmp_path):
    node = mixed_pair.nodes[0]
    started = mixed_pair.exec(node.hostname, "sleep 600 > /dev/null 2>&1 & echo $!")
    pid = int(started.stdout.split()[-1])
    claim = json.dumps({"npu": 0, "pid": pid, "name": "foreign", "memory_mb": 1000})
    mixed_pair.exec(node.hostname, f"echo '{claim}' > /etc/orchestrate-sim/npu-procs/{pid}.json")
    try:
        doc = yaml.safe_load(Path(mixed_pair.inventory).read_text())
        doc["nodes"] = doc["nodes"][:1]  # the 800T A2 node only
        inventory = tmp_path / "one.yaml"
        inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
        data = tmp_path / "train.mindrecord"
        data.write_bytes(b"\0" * 64)
        Path(f"{data}.db").write_bytes(b"\0" * 64)
        launch = _cli(tmp_path, "launch", "pretrain", "-i", str(inventory), "--force", "--set", "job.model=tiny",
                      "--set", f"job.train_dataset={data}", "--set", "parallel.dp=8", "--set", "parallel.mp=1")  # fmt: skip
        assert launch.returncode == 5, launch.stdout + launch.stderr
        assert f"pid {pid}" in launch.stderr and "did not start" in launch.stderr
        assert mixed_pair.exec(node.hostname, f"kill -0 {pid} && echo alive").stdout.strip() == "alive"
    finally:
        mixed_pair.exec(node.hostname, f"kill {pid}; rm -f /etc/orchestrate-sim/npu-procs/{pid}.json")
