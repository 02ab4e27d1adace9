"""The agent and real NPUs' habits, with a fake npu-smi whose listing outlives a process by seconds:
stop waits for the release, a start skips exited pids but waits for their release, and each rank gets
the DEVICE_ID its process sees (ASCEND_RT_VISIBLE_DEVICES, a container's renumbering)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from orchestrator.agent.node import base as node_base
from tests.agent import fake_npu_smi
from tests.agent.conftest import DUMMY, AgentHarness, wait_for_file

SLEEP = ("--sleep", "60")


def test_stop_returns_once_npu_smi_no_longer_lists_the_jobs_processes(agent: AgentHarness, tmp_path: Path):
    env = agent.env(**fake_npu_smi.install(tmp_path / "npu", [0, 1], linger_s=1.0))
    ready = [tmp_path / "r0", tmp_path / "r1"]
    ranks = [(*SLEEP, "--claim-npu", str(i), "--ready", str(ready[i])) for i in (0, 1)]
    code, started = agent.run("start", "--spec", agent.spec("job-r", ranks, devices=[0, 1]), env=env)
    assert code == 0, started
    assert started["released"]["free"] is True and started["released"]["waited_s"] == 0.0  # nothing listed
    for r in ready:
        wait_for_file(r)
    pids = {p["pid"] for p in started["processes"]}
    code, busy = agent.run("check-devices", "--devices", "0,1", env=env)
    assert code == node_base.EXIT_BUSY and {h["pid"] for h in busy["holders"]} == pids

    code, stopped = agent.run("stop", "--job", "job-r", "--grace", "1", env=env)
    assert code == 0 and stopped["none_left"], stopped
    release = stopped["release"]
    assert release["free"] is True and release["devices"] == [0, 1] and release["listed"] == []
    assert release["waited_s"] > 0  # npu-smi listed the exited ranks for a while
    code, free = agent.run("check-devices", "--devices", "0,1", env=env)
    assert code == 0 and free["free"] and free["holders"] == []  # released before stop answered


def test_start_skips_exited_pids_npu_smi_lists_but_waits_for_their_release(
    agent: AgentHarness, tmp_path: Path
):
    env = agent.env(**fake_npu_smi.install(tmp_path / "npu", [2, 3], linger_s=1.5))
    ready = tmp_path / "crashed.ready"
    crashed = subprocess.Popen(
        [sys.executable, str(DUMMY), *SLEEP, "--claim-npu", "2", "--ready", str(ready)], env=env
    )
    wait_for_file(ready)
    crashed.kill()  # an earlier rank died; npu-smi keeps listing it for a while
    crashed.wait()

    hurried = agent.spec("job-hurried", [SLEEP], devices=[2], release_wait_s=0)
    code, refused = agent.run("start", "--spec", hurried, env=env)
    assert code == node_base.EXIT_BUSY, refused
    assert f"npu-smi still lists pid {crashed.pid} on NPU 2 after waiting" in refused["error"]
    assert "has exited" in refused["error"] and refused["conflicts"][0]["state"] == "exited"

    code, started = agent.run("start", "--spec", agent.spec("job-b", [SLEEP], devices=[2]), env=env)
    assert code == 0, started  # the exited pid is no conflict ...
    assert started["released"]["free"] is True and started["released"]["waited_s"] > 0  # ... once released
    code, free = agent.run("check-devices", "--devices", "2", env=env)
    assert code == 0 and free["holders"] == []
    assert agent.run("stop", "--job", "job-b", "--grace", "1", env=env)[0] == 0


def _ranks_with_devices(spec: str, devices: list[int]) -> str:
    """The spec with rank i bound to physical NPU ``devices[i]`` as the plan writes it (DEVICE_ID)."""
    data = json.loads(Path(spec).read_text())
    for rank, device in zip(data["ranks"], devices):
        rank.update(device=device)
        rank["env"]["DEVICE_ID"] = str(device)
    Path(spec).write_text(json.dumps(data))
    return spec


def test_device_id_is_the_id_the_process_sees(agent: AgentHarness, tmp_path: Path):
    # a container holding physical NPUs 4 and 5: the runtime numbers them 0 and 1 (npu-smi info -m)
    env = agent.env(**fake_npu_smi.install(tmp_path / "npu", [4, 5], logic={4: 0, 5: 1}))
    out = [tmp_path / "rank0.json", tmp_path / "rank1.json"]
    ranks = [(*SLEEP, "--env-out", str(out[0]), "--device_id", "4"), (*SLEEP, "--env-out", str(out[1]))]
    spec = _ranks_with_devices(agent.spec("job-c", ranks, devices=[4, 5]), [4, 5])
    code, started = agent.run("start", "--spec", spec, env=env)
    assert code == 0, started
    for o in out:
        wait_for_file(o)
    seen = [json.loads(o.read_text()) for o in out]
    assert [s["DEVICE_ID"] for s in seen] == ["0", "1"]
    assert seen[0]["argv"][-2:] == ["--device_id", "0"]  # a single-device run's argument too
    assert started["device_map"]["ranks"]["1"] == {"device": 5, "logical": 1, "device_id": 1, "visible": None}
    assert agent.status("job-c")["processes"][0]["name"] == "rank-0"
    assert agent.run("stop", "--job", "job-c", "--grace", "1", env=env)[0] == 0

    # ASCEND_RT_VISIBLE_DEVICES (logic ids) renumbers again: logic 1 is index 0 of "1"
    visible = dict(env, ASCEND_RT_VISIBLE_DEVICES="1")
    one = _ranks_with_devices(agent.spec("job-v", [(*SLEEP, "--env-out", str(out[0]))], devices=[5]), [5])
    out[0].unlink()
    code, started = agent.run("start", "--spec", one, env=visible)
    assert code == 0, started
    wait_for_file(out[0])
    assert json.loads(out[0].read_text())["DEVICE_ID"] == "0"
    assert agent.run("stop", "--job", "job-v", "--grace", "1", env=visible)[0] == 0
    hidden = _ranks_with_devices(agent.spec("job-h", [SLEEP], devices=[4]), [4])
    code, refused = agent.run("start", "--spec", hidden, env=visible)
    assert code == node_base.EXIT_USAGE
    assert "NPU 4 (logic id 0) is not visible to the ranks: ASCEND_RT_VISIBLE_DEVICES=1" in refused["error"]

    # npu-smi's process table is matched by the physical id: a holder of NPU 4 blocks NPU 4 only
    holder = subprocess.Popen([sys.executable, str(DUMMY), *SLEEP, "--claim-npu", "4", "--ready", str(tmp_path / "h")],
                              env=env)  # fmt: skip
    try:
        wait_for_file(tmp_path / "h")
        on5 = _ranks_with_devices(agent.spec("job-5", [SLEEP], devices=[5]), [5])
        assert agent.run("start", "--spec", on5, env=env)[0] == 0
        assert agent.run("stop", "--job", "job-5", "--grace", "1", env=env)[0] == 0
        on4 = _ranks_with_devices(agent.spec("job-4", [SLEEP], devices=[4]), [4])
        code, refused = agent.run("start", "--spec", on4, env=env)
        assert code == node_base.EXIT_BUSY and f"NPU 4 is held by pid {holder.pid}" in refused["error"]
    finally:
        holder.kill()
        holder.wait()


def test_the_device_map_is_read_once_a_boot_while_the_chips_stay_the_same(
    agent: AgentHarness, tmp_path: Path
):
    """``npu-smi info -m`` is read by the first start; later starts take the kept map while the boot, the
    tool and the chips ``npu-smi info`` lists are the same, and read it again when the chips change."""
    npu = tmp_path / "npu"
    env = agent.env(**fake_npu_smi.install(npu, [4, 5], logic={4: 0, 5: 1}))

    def started_map(job: str, device: int) -> dict:
        spec = _ranks_with_devices(agent.spec(job, [SLEEP], devices=[device]), [device])
        code, started = agent.run("start", "--spec", spec, env=env)
        assert code == 0, started
        assert agent.run("stop", "--job", job, "--grace", "1", env=env)[0] == 0
        return started["device_map"]["ranks"]["0"]

    assert started_map("map-a", 5)["logical"] == 1
    kept = Path(agent.workdir) / "cache" / "npu-map.json"
    assert kept.stat().st_mode & 0o777 == 0o600
    config = json.loads((npu / "config.json").read_text())
    # a renumbering npu-smi would print now: never happens without a reboot, so the kept map is used
    (npu / "config.json").write_text(json.dumps(dict(config, logic={"4": 1, "5": 0})))
    assert started_map("map-b", 5)["logical"] == 1
    # other chips (a container with other NPUs, a card gone): npu-smi is asked again
    (npu / "config.json").write_text(json.dumps(dict(config, npus=[5], logic={"5": 0})))
    assert started_map("map-c", 5)["logical"] == 0
    kept.write_text("{not json")  # a damaged cache is read around, then written again
    assert started_map("map-d", 5)["logical"] == 0
    assert json.loads(kept.read_text())["map"] == {"5": 0}
