"""Two jobs on disjoint NPUs of the same nodes (needs root): the simulated cluster's Ascend mode, 2 Atlas
800T A2 nodes x 8 NPUs, a pretrain on NPUs 0-3 and another pretrain (same cluster, same task) on NPUs 4-7
of both nodes, run at once with stand-in ranks. A third job wanting NPUs of both is refused naming them;
`stop` without a job id names both instead of guessing; a rank of the first killed fails that job only
(its other ranks stopped, the rank named); the second runs to completion. The two share no file."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tests.fixtures.sim import ascend_pair
from tests.fixtures.sim import orchestrate as _cli

pytestmark = pytest.mark.cluster
BOUND = re.compile(r"rank (\d+) bound device (\d+) \(logical \d+\)")


@pytest.fixture(scope="module")
def a2_pair(tmp_path_factory) -> Iterator[object]:
    yield from ascend_pair(tmp_path_factory.mktemp("a2conc"), "c", 170, step_s=0.25)


def _inventory(cluster, tmp_path: Path, name: str, devices: list[int]) -> Path:
    """The cluster's inventory using only ``devices`` of every node (same cluster name and work folder)."""
    doc = yaml.safe_load(Path(cluster.inventory).read_text())
    for node in doc["nodes"]:
        ips = dict(zip(node["devices"], node["device_ips"]))
        node["devices"], node["device_ips"] = devices, [ips[d] for d in devices]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _status(home: Path, job: str) -> dict:
    return json.loads((home / "jobs" / job / "status.json").read_text())


def _wait(check, what: str, timeout: float):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return value


def _ranks(home: Path, job: str) -> list[dict]:
    return [r for n in _status(home, job)["nodes"] for r in n["ranks"] if r["rank"] is not None]


def _stepping(home: Path, job: str, step: int) -> bool:
    ranks = _ranks(home, job)
    return len(ranks) == 8 and min((r["progress"] or {}).get("step", 0) for r in ranks) >= step


def _latest(home: Path) -> str:
    return sorted(p.name for p in (home / "jobs").iterdir() if (p / "job.json").exists())[-1]


def test_two_jobs_on_disjoint_npus_run_at_once_and_fail_alone(a2_pair, tmp_path):
    home, data = tmp_path / "home", tmp_path / "data" / "train.mindrecord"
    data.parent.mkdir()
    data.write_bytes(b"\0" * 64)
    Path(f"{data}.db").write_bytes(b"\0" * 64)
    sets = ["job.model=tiny", f"job.train_dataset={data}", "parallel.dp=8", "parallel.mp=1",
            "job.save_checkpoint_steps=10"]  # fmt: skip

    def launch(name: str, devices: list[int], steps: int, *extra: str):
        inventory = _inventory(a2_pair, tmp_path, name, devices)
        args = [x for s in [*sets, f"job.total_steps={steps}"] for x in ("--set", s)]
        return _cli(home, "launch", "pretrain", "-i", str(inventory), *args, *extra)

    res = launch("low", [0, 1, 2, 3], 2000, "--detach")
    assert res.returncode == 0, res.stderr + res.stdout
    low = _latest(home)
    res = launch("high", [4, 5, 6, 7], 240, "--detach")
    assert res.returncode == 0, res.stderr + res.stdout  # another job of ours runs there, on other NPUs
    high = _latest(home)
    assert high != low
    _wait(lambda: _stepping(home, low, 12) and _stepping(home, high, 12), "both past a checkpoint (10)", 240)

    res = launch("middle", [2, 3, 4, 5], 10)  # wants NPUs of both: refused before anything is written
    assert res.returncode == 5, res.stderr + res.stdout
    assert f"{low} (running, 4 processes) holds NPU 2, 3" in res.stderr, res.stderr
    assert f"{high} (running, 4 processes) holds NPU 4, 5" in res.stderr, res.stderr
    assert len(list((home / "jobs").iterdir())) == 2

    stop = _cli(home, "stop")  # two running: never a guess
    assert stop.returncode == 2 and low in stop.stderr and high in stop.stderr, stop.stderr + stop.stdout
    listed = json.loads(_cli(home, "jobs", "--json").stdout)
    assert {(j["job_id"], j["state"]) for j in listed} == {(low, "running"), (high, "running")}

    victim = next(r for r in _ranks(home, low) if r["name"] == "rank-5")  # on the second node
    a2_pair.exec(a2_pair.nodes[1].hostname, f"kill -9 {victim['pid']}")
    failed = _wait(
        lambda: (s := _status(home, low))["state"] == "failed" and s, "the first job's failure", 180
    )
    cause = failed["root_cause"]
    assert (cause["what"], cause["rank"], cause["host"]) == ("rank-5", 5, a2_pair.nodes[1].host), cause
    ended = _wait(
        lambda: all(r["state"] != "running" for r in _ranks(home, low)), "its other ranks ended", 60
    )
    assert ended and all(r["killed_by_agent"] for r in _ranks(home, low) if r["name"] != "rank-5")
    assert _status(home, high)["state"] == "running"  # untouched by the other job's failure

    done = _wait(lambda: (s := _status(home, high))["state"] in ("succeeded", "failed") and s, "the end", 400)
    assert done["state"] == "succeeded", (done.get("message"), done.get("root_cause"))
    assert all(r["exit_code"] == 0 for r in _ranks(home, high)), _ranks(home, high)

    for index, node in enumerate(a2_pair.nodes):  # each job bound its own NPUs and kept its own files
        for job, first in ((low, 0), (high, 4)):
            run = next((node.workdir / "jobs").glob(f"*-pretrain/runs/{job}"))
            logs = sorted(run.glob("output/log/rank_*/stdout.log"))
            bound = {
                int(r): int(d) for log in logs for r, d in BOUND.findall(log.read_text(errors="replace"))
            }
            assert bound == {4 * index + d: first + d for d in range(4)}, (node.hostname, job, bound)
            assert (run / "config" / "pretrain.yaml").exists() and (run / "rank_table.json").exists()
        out = {p.name for p in next((node.workdir / "jobs").glob("*-pretrain/output")).iterdir()}
        assert {low, high} <= out  # each job's checkpoints in its own output folder
