"""One npu-smi parser: the agent, staged as a node gets it (one zipapp holding the agent and
orchestrator/ascend) and run on a Python without the orchestrator package, reads every capture exactly
as the controller does, the container (116-column) layout included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.agent.node import devices as node_devices
from orchestrator.ascend import npu_smi, npu_smi_queries
from orchestrator.launch import agent_rpc
from orchestrator.transport import LocalTransport
from tests.ascend.test_hccn import sections
from tests.fixtures.captures import CAPTURES
from tests.fixtures.python39 import PY39

SYNTHETIC = Path(__file__).resolve().parents[1] / "ascend" / "data"
PARSERS = {"info": "parse_npu_smi_info", "map": "parse_npu_smi_mapping", "list": "parse_npu_smi_list",
           "board": "parse_npu_smi_board", "spod": "parse_npu_smi_spod_info", "version": "parse_npu_smi_version"}  # fmt: skip
NOT_NPU_SMI = {"hccn_tool", "hccn.conf"}  # hccn_tool / /etc/hccn.conf: parsed by discovery, never on a node
PYTHONS = [p for p in (sys.executable, PY39) if p]


def _query(command: str) -> str:
    """The parser a capture (or a section of a multi-command capture) is for."""
    args = command.replace("_", " ").split()
    for flag, query in (
        ("-m", "map"),
        ("-l", "list"),
        ("spod-info", "spod"),
        ("board", "board"),
        ("-v", "version"),
    ):
        if flag in args:
            return query
    return "info"


def captures() -> list[tuple[str, str, str]]:
    """(label, query, text) of every npu-smi capture in both folders; fails on a file it cannot place."""
    out = []
    files = sorted(CAPTURES.glob("*.txt")) + sorted(SYNTHETIC.glob("*.txt"))
    for path in files:
        text = path.read_text()
        if path.name.startswith(tuple(NOT_NPU_SMI)):
            continue
        if path.name.startswith("mindcluster"):
            for command, part in sections(text).items():
                if "npu-smi" in command:
                    out.append((f"{path.name}: {command}", _query(command), part))
            continue
        assert path.name.startswith("npu-smi_info"), f"{path.name}: which tool printed it? (classify it here)"
        out.append((path.name, _query(path.name), text))
    return out


def _controller(query: str, text: str) -> Any:
    fn = getattr(npu_smi, PARSERS[query], None) or getattr(npu_smi_queries, PARSERS[query])
    try:
        return node_devices.as_json(fn(text))
    except ValueError as e:
        return f"{type(e).__name__}: {e}"


# Run on the node's Python: import the staged agent's modules from its zipapp, parse, print JSON.
_NODE = """import importlib, json, sys
sys.path.insert(0, sys.argv[1])
from orchestrator.agent.node import devices as node_devices
npu_smi = node_devices.parsers()
queries = importlib.import_module(npu_smi.__package__ + ".npu_smi_queries")
out = []
for query, fn, text in json.load(sys.stdin):
    try:
        out.append(node_devices.as_json((getattr(npu_smi, fn, None) or getattr(queries, fn))(text)))
    except ValueError as e:
        out.append("%s: %s" % (type(e).__name__, e))
print(json.dumps({"results": out, "controller": "orchestrator.errors" in sys.modules, "parser": npu_smi.__file__}))
"""


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    """The agent's zipapp on a node, written as staging writes it."""
    workdir = tmp_path_factory.mktemp("node")
    assert agent_rpc.install_agent(LocalTransport("127.0.0.1"), str(workdir))
    assert not agent_rpc.install_agent(LocalTransport("127.0.0.1"), str(workdir))  # there: not written again
    return Path(agent_rpc.agent_path(str(workdir)))


def test_every_capture_is_placed_and_the_container_layout_is_among_them():
    found = {label: query for label, query, _ in captures()}
    assert found["npu-smi_info_26.0.0_116col_container.txt"] == "info"
    assert found["npu-smi_info_-m_910B3_first2npu_verbatim_tabs.txt"] == "map"
    assert sum(q == "info" for q in found.values()) >= 10


@pytest.mark.parametrize("python", PYTHONS, ids=lambda p: "python3.9" if p == PY39 else "controller-python-S")
def test_shipped_parser_reads_every_capture_as_the_controller(staged: Path, python: str):
    todo = json.dumps([(q, PARSERS[q], text) for _, q, text in captures()])
    argv = [python, "-S", "-c", _NODE, str(staged)]  # -S and cwd: nothing of the checkout importable
    proc = subprocess.run(argv, input=todo, capture_output=True, text=True, timeout=120, cwd=staged.parent)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert not answer["controller"] and answer["parser"] == str(
        staged / "orchestrator" / "ascend" / "npu_smi.py"
    )
    for (label, query, text), got in zip(captures(), answer["results"]):
        assert got == _controller(query, text), label


def test_agent_reads_npu_smi_as_the_controller(staged: Path, tmp_path: Path):
    """``npu-info`` runs npu-smi (info, info -m) through the agent itself; same results as the controller's."""
    checked = 0
    for i, (label, query, text) in enumerate(captures()):
        if query not in ("info", "map"):
            continue
        folder = tmp_path / str(i)
        folder.mkdir()
        (folder / "out.txt").write_text(text)
        other = "info -m" if query == "info" else "info"
        tool = folder / "npu-smi"
        tool.write_text(f'#!/bin/sh\n[ "$*" = "{other}" ] && exit 1\ncat {folder / "out.txt"}\n')
        tool.chmod(0o755)
        env = {"PATH": f"{folder}:/usr/bin:/bin"}
        proc = subprocess.run([PYTHONS[-1], "-S", str(staged), "--workdir", str(tmp_path / "wd"),
                               "npu-info"], capture_output=True, text=True, env=env, timeout=60, cwd=folder)  # fmt: skip
        got = json.loads(proc.stdout)
        assert got["ok"] and got["npu_smi"] == str(tool), proc.stderr
        key, error = ("info", "info_error") if query == "info" else ("mapping", "mapping_error")
        expected = _controller(query, text)
        assert (got[key] if got[key] is not None else got[error]) == (
            expected if not isinstance(expected, str) else expected.split(": ", 1)[1]
        ), label
        checked += 1
    assert checked >= 10
