"""``node_pack`` through the local transport (real files, the real node-side script; no SSH): fast."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from orchestrator.collect import gather, layout
from orchestrator.transport import LocalTransport
from tests.collect.conftest import TRACE, tree
from tests.unit.test_py39_compat import PY39


def test_pack_takes_the_jobs_files_only_and_changes_nothing(node, tmp_path):
    record, spec, pn, work, _ = node
    before = tree(tmp_path)
    req = gather.node_request(record, spec, pn)
    out = tmp_path / "out" / spec.host
    c = gather.fetch_node(LocalTransport(spec.host), sys.executable, req, out)
    assert c.ok, c.error
    assert tree(tmp_path) == before | {
        k: v for k, v in tree(tmp_path).items() if k.startswith(str(tmp_path / "out"))
    }
    got = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"logs/scheduler/stdout.log", "logs/rank_0/stdout.log", "logs/rank_1/stdout.log", "config/pretrain.yaml",
            "agent/state.json", "agent/supervisor.log", "agent/launch-spec.json", "plog/0/plog/plog-1_2.log",
            "snapshots/npu-smi-info.txt", layout.MANIFEST, layout.NODE_FACTS} <= got  # fmt: skip
    assert not any(p.endswith(".1000000000") for p in got) and c.skipped_old == 1
    assert (out / "snapshots/npu-smi-info.txt").read_text() == "npu-smi 25.2.0 info\n"
    assert c.tools_missing == ("hccn_tool",)
    assert c.local(pn.launches[2].stdout).read_text().endswith("\n".join(TRACE) + "\n")
    assert not c.unreadable  # the absent rank table is optional
    assert pn.job_dir in json.loads((out / layout.NODE_FACTS).read_text())["disk"]


def test_big_files_are_cut_to_their_tail_and_a_second_collect_replaces_the_first(node, tmp_path):
    record, spec, pn, _, _ = node
    log = Path(pn.launches[2].stdout)
    log.write_text("x" * 5000 + "\nthe error at the end\n")
    os.utime(log, (time.time() - 60, time.time() - 60))  # within the run window
    req = dict(gather.node_request(record, spec, pn), max_file_bytes=100)
    out = tmp_path / "out" / spec.host
    (out / "stale").mkdir(parents=True)
    c = gather.fetch_node(LocalTransport(spec.host), sys.executable, req, out)
    assert c.local(str(log)).read_text().endswith("the error at the end\n") and str(log) in c.truncated
    assert not (out / "stale").exists()


class _Chunks:
    """A stream that returns the given pieces one ``read`` at a time (as a slow link would)."""

    def __init__(self, data: bytes, piece: int = 7):
        self.data, self.piece = data, piece

    def read(self, n: int = -1, timeout: float = 60) -> bytes:
        out, self.data = self.data[: self.piece], self.data[self.piece :]
        return out


def _archive(request: dict) -> bytes:
    buf = io.BytesIO()
    gather.node_pack.pack(request, buf)
    return buf.getvalue()


def test_the_archive_stream_survives_shell_noise_and_rejects_damage(tmp_path):
    payload = _archive({"entries": [], "commands": []})
    noisy = b"Welcome to node1\n\n" + gather.node_pack.BEGIN.encode() + b"\n" + payload
    size = gather.receive_archive(_Chunks(noisy), tmp_path / "a.tar.gz", 10, 1 << 20)
    assert size == len(payload) and (tmp_path / "a.tar.gz").read_bytes() == payload
    assert gather.unpack(tmp_path / "a.tar.gz", tmp_path / "out")["files"] == []
    with pytest.raises(gather.NoArchive, match="no archive"):
        gather.receive_archive(_Chunks(b"bash: python: command not found\n"), tmp_path / "b", 10, 1 << 20)
    with pytest.raises(ValueError, match="passed 100 bytes"):
        gather.receive_archive(_Chunks(noisy), tmp_path / "c", 10, 100)
    (tmp_path / "d.tar.gz").write_bytes(payload[: len(payload) // 2])  # cut short: the gzip check fails
    with pytest.raises((tarfile.TarError, EOFError, OSError)):
        gather.unpack(tmp_path / "d.tar.gz", tmp_path / "out2")


def test_a_node_past_its_total_cap_leaves_files_out_and_lists_them(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("a.log", "b.log", "c.log"):
        (logs / name).write_bytes(os.urandom(40_000))
    req = {"entries": [{"arc": "logs", "path": str(logs)}], "commands": [], "max_total_bytes": 90_000}
    c = gather.fetch_node(LocalTransport("localhost"), sys.executable, req, tmp_path / "out" / "h")
    assert c.ok, c.error
    assert sorted(p.name for p in (tmp_path / "out" / "h" / "logs").iterdir()) == ["a.log", "b.log"]
    assert c.left_out == (f"{logs / 'c.log'} (40000 bytes)",) and c.max_node_bytes == 90_000


def test_ascend_tools_run_one_at_a_time(tmp_path):
    trace = tmp_path / "trace"
    tool = tmp_path / "bin" / "npu-smi"
    tool.parent.mkdir()
    tool.write_text(f"#!/bin/sh\necho start >> {trace}\nsleep 0.2\necho end >> {trace}\necho ok\n")
    tool.chmod(0o755)
    commands = [{"arc": f"snapshots/{k}.txt", "argv": ["npu-smi", "info", str(k)]} for k in range(4)]
    req = {"entries": [], "commands": commands, "tool_places": {"npu-smi": [str(tool)]}}
    c = gather.fetch_node(LocalTransport("localhost"), sys.executable, req, tmp_path / "out" / "h")
    assert c.ok, c.error
    assert trace.read_text().split() == ["start", "end"] * 4  # never two at once


def test_unpack_refuses_paths_outside_the_host_folder(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escaped")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(tarfile.TarError):
        gather.unpack(buf.getvalue(), tmp_path / "h")
    assert not (tmp_path / "escaped").exists() and not list(tmp_path.iterdir())


@pytest.mark.skipif(PY39 is None, reason="no Python 3.9 interpreter on this machine")
def test_node_pack_runs_on_python39(tmp_path):
    (tmp_path / "a.log").write_text("hello\n")
    req = json.dumps(
        {
            "entries": [{"arc": "logs", "path": str(tmp_path)}],
            "commands": [{"arc": "s.txt", "argv": ["true"]}],
        }
    )
    proc = subprocess.run([PY39, "-c", gather.NODE_SOURCE, req], capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    gather.receive_archive(_Chunks(proc.stdout, 1 << 16), tmp_path / "a.tar.gz", 10, 1 << 20)
    manifest = gather.unpack(tmp_path / "a.tar.gz", tmp_path / "out")
    assert [f["arc"] for f in manifest["files"]] == ["logs/a.log"] and manifest["commands"][0][
        "exit_code"
    ] == 0


def test_request_without_a_plan_copy_takes_the_folder_of_the_logs(node):
    record, spec, pn, _, _ = node
    req = gather.node_request(record, spec, None)
    assert req["entries"][0] == {"arc": "logs", "path": f"{pn.job_dir}/output/log", "window": True}
    assert req["plog_default"] is True  # no plan: the node's own plog location
    with_plan = gather.node_request(record, spec, pn)
    assert with_plan["plog_default"] is False and [e["arc"] for e in with_plan["entries"]][-1] == "plog/0"
    assert [c["argv"] for c in with_plan["commands"]][:2] == [
        ["npu-smi", "info"],
        ["hccn_tool", "-i", "0", "-link", "-g"],
    ]


def test_hccn_tool_is_found_under_the_nodes_ascend_root_when_not_on_path(node, tmp_path):
    """Tools not on PATH (hccn_tool never is by default): <ascend_root>/driver/tools, then /usr/local/Ascend."""
    import dataclasses

    record, spec, pn, _, _ = node
    root = tmp_path / "Ascend"
    tool = root / "driver" / "tools" / "hccn_tool"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\necho 'link status: UP'\n")
    tool.chmod(0o755)
    req = gather.node_request(record, dataclasses.replace(spec, ascend_root=str(root)), pn)
    assert req["tool_places"]["hccn_tool"] == [str(tool), "/usr/local/Ascend/driver/tools/hccn_tool"]
    out = tmp_path / "out" / spec.host
    c = gather.fetch_node(LocalTransport(spec.host), sys.executable, req, out)
    assert c.ok and c.tools_missing == (), c
    assert (out / "snapshots" / "hccn_tool-i-0-link-g.txt").read_text() == "link status: UP\n"
