"""The stand-in rank of a simulated Atlas 800T A2 node refuses what MindSpore, CANN and HCCL would refuse,
and holds its NPU as a real process does (needs root).

Each test starts ``python -m iflytekspark.run`` over SSH as the job user, the way the orchestrator's
agent does: the model package shipped into the work folder, a rank table and a YAML written there.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from orchestrator.agent.node.progress import parse_progress
from orchestrator.launch.resume_point import _SCRIPT as LIST_CHECKPOINTS
from tests.fixtures.sim import sim_name, ssh_client

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]
WORK = "/opt/orchestrate-node/standin"
RUN = "/usr/local/python3.11/bin/python -m iflytekspark.run --run_mode train --use_parallel True"


def _yaml(steps: int = 3, **context) -> str:
    doc = {
        "output_dir": "./output",
        "run_mode": "train",
        "use_parallel": True,
        "context": {"mode": 0, "device_target": "Ascend", "max_device_memory": "58GB", **context},
        "runner_config": {"epochs": 1},
        "lr_schedule": {"learning_rate": 1.0e-4, "total_steps": steps},
        "callbacks": [{"type": "MFLossMonitor"}, {"type": "CheckpointMonitor", "prefix": "iFlytekSpark_tiny",
                                                   "save_checkpoint_steps": 2}],
    }  # fmt: skip
    return yaml.safe_dump(doc)


def _rank_table(host: str, ips: list[str], server_id: str = "") -> str:
    devices = [{"device_id": str(d), "device_ip": ip, "rank_id": str(d)} for d, ip in enumerate(ips)]
    server = {"server_id": server_id or host, "host_nic_ip": "reserve", "device": devices}
    return json.dumps({"version": "1.0", "server_count": "1", "status": "completed", "server_list": [server]})


@pytest.fixture(scope="module")
def a2(tmp_path_factory) -> Iterator[object]:
    """One Atlas 800T A2 node (8 NPUs), the model package shipped, a rank table and YAMLs in place."""
    from orchestrator import sim

    hw = tmp_path_factory.mktemp("a2") / "hardware.yaml"
    npus = [{"id": d, "ip": f"192.168.171.{10 + d}"} for d in range(8)]
    hw.write_text(
        yaml.safe_dump(
            {"kind": "atlas-800t-a2", "npu_release_s": 6, "step_s": 0.2, "nodes": [{"npus": npus}]}
        )
    )
    name = sim_name("s")
    cluster = sim.up(name, nodes=1, hardware_file=hw)
    try:
        node = cluster.nodes[0]
        folder = node.workdir / "standin"
        shutil.copytree(REPO / "model" / "iflytekspark", folder / "code" / "iflytekspark",
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        ips = [n["ip"] for n in npus]
        files = {
            "rank_table.json": _rank_table(node.host, ips),
            "elsewhere.json": _rank_table(node.host, ips, server_id="10.9.9.9"),
            "job.yaml": _yaml(),
            "long.yaml": _yaml(steps=40),
            "device0.yaml": _yaml(device_id=0),
        }
        for file, text in files.items():
            (folder / file).write_text(text)
        uid, gid = node.workdir.stat().st_uid, node.workdir.stat().st_gid
        for dirpath, _, filenames in os.walk(folder):
            for entry in [dirpath, *(os.path.join(dirpath, f) for f in filenames)]:
                os.chown(entry, uid, gid)
        yield cluster
    finally:
        sim.down(name)


def _ssh(cluster, cmd: str, timeout: float = 60) -> tuple[int, str]:
    client = ssh_client(cluster, cluster.nodes[0])
    try:
        _, out, _ = client.exec_command(cmd + " 2>&1", timeout=timeout)
        text = out.read().decode(errors="replace")
        return out.channel.recv_exit_status(), text
    finally:
        client.close()


def _rank_cmd(rank: int, out: str, *, cann: bool = True, config: str = "job.yaml", table: str = "rank_table.json",
              env: str = "", pythonpath: str = f"{WORK}/code${{PYTHONPATH:+:$PYTHONPATH}}", device: str = "",
              args: str = "") -> str:  # fmt: skip
    """The shell command of one rank, as the agent runs it (CANN sourced unless ``cann`` is False)."""
    source = ". /usr/local/Ascend/ascend-toolkit/set_env.sh && " if cann else ""
    ident = f"RANK_TABLE_FILE={WORK}/{table} RANK_ID={rank} RANK_SIZE=8 DEVICE_ID={device or rank}"
    return (f"cd {WORK} && mkdir -p {out} && {source}export {ident} {env} PYTHONPATH={pythonpath} && "
            f"cd {out} && exec {RUN} --config {WORK}/{config} {args}")  # fmt: skip


def _rank(cluster, rank: int, out: str, **kw) -> tuple[int, str]:
    return _ssh(cluster, _rank_cmd(rank, out, **kw))


def test_a_rank_with_cann_and_its_own_npu_trains_and_saves_checkpoints(a2):
    code, text = _rank(a2, 3, "ok")
    assert code == 0, text
    assert "rank 3 bound device 3 (logical 3)" in text
    progress = parse_progress(text)
    assert progress and (progress["step"], progress["total_steps"]) == (3, 3), progress
    folder = a2.nodes[0].workdir / "standin" / "ok" / "output"
    listed = subprocess.run([sys.executable, "-c", LIST_CHECKPOINTS, str(folder), "list", "3"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    saved = {(name, step) for _, name, _, step in json.loads(listed.stdout)}
    assert saved == {("iFlytekSpark_tiny_rank_3-1_2.ckpt", 2), ("iFlytekSpark_tiny_rank_3-1_3.ckpt", 3)}


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"cann": False}, "Unsupported device target Ascend"),  # nothing sourced CANN's set_env.sh
        ({"pythonpath": f"{WORK}/code"}, "No module named 'te'"),  # PYTHONPATH replaced: CANN's entries gone
        ({"pythonpath": "${PYTHONPATH}"}, "No module named 'iflytekspark'"),  # the model code not shipped
        ({"env": "ASCEND_OPP_PATH=/tmp"}, "ASCEND_OPP_PATH=/tmp is not this node's CANN install"),
        ({"config": "device0.yaml"}, "device_id 5 but this process runs on device 0"),  # YAML device_id wins
        ({"table": "elsewhere.json"}, "server_id '10.9.9.9' is not this host's IP"),
        ({"env": "ASCEND_RT_VISIBLE_DEVICES=5"}, "Call aclrtSetDevice failed"),  # DEVICE_ID 5 of 1 visible
    ],
)
def test_the_stand_in_refuses_what_a_real_node_refuses(a2, kw, expected):
    code, text = _rank(a2, 5, "refused", **kw)
    assert code != 0 and expected in text, text
    assert "step:[" not in text


def test_a_container_style_rank_binds_the_physical_npu_behind_its_logical_id(a2):
    """ASCEND_RT_VISIBLE_DEVICES=6: the process sees NPU 6 as device 0 (a single-device run here: how
    DEVICE_ID must read against the rank table in a container is the product's question)."""
    code, text = _rank(
        a2, 6, "visible", env="ASCEND_RT_VISIBLE_DEVICES=6", args="--use_parallel False --device_id 0"
    )
    assert code == 0 and "rank 0 bound device 6 (logical 0)" in text, text


def _npu_rows(cluster) -> dict[int, list[int]]:
    """{npu: [pids]} of ``npu-smi info``'s process table."""
    text = _ssh(cluster, "npu-smi info")[1]
    rows: dict[int, list[int]] = {}
    for m in re.finditer(r"^\| (\d+)\s+0\s+\| (\d+)\s+\| python", text, re.M):
        rows.setdefault(int(m[1]), []).append(int(m[2]))
    return rows


def _wait(check, what: str, timeout: float = 60, log: str = ""):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {log and log()}"
        time.sleep(0.2)
    return value


def test_an_npu_claim_is_listed_refused_twice_and_held_after_exit(a2):
    cmd = _rank_cmd(2, "held", config="long.yaml")
    code, text = _ssh(a2, f"setsid sh -c {shlex.quote(cmd)} > {WORK}/held.log 2>&1 < /dev/null & echo $!")
    pid = int(text.split()[-1])  # the rank's pid: sh execs into cd ... exec python
    log = lambda: _ssh(a2, f"cat {WORK}/held.log; npu-smi info | tail -30; ps -ef")[1]  # noqa: E731
    _wait(lambda: pid in _npu_rows(a2).get(2, []), "npu-smi listing the rank on NPU 2", log=log)
    code, text = _rank(a2, 2, "second")
    assert code != 0 and "EJ0001" in text and "Maybe the last training process is running" in text, text
    _ssh(a2, f"kill -9 {pid}; while kill -0 {pid} 2>/dev/null; do sleep 0.05; done")
    assert pid in _npu_rows(a2).get(2, [])  # ended, and still held: the driver releases it seconds later
    code, text = _rank(a2, 2, "third")
    assert code != 0 and "EJ0001" in text, text
    _wait(lambda: 2 not in _npu_rows(a2), "the NPU released")
    code, text = _rank(a2, 2, "fourth")
    assert code == 0, text
