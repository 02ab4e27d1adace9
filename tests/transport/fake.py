"""A fake node for fast tests: answers discovery's framed step scripts and doctor's python probe from
recorded outputs (the real captures in tests/fixtures/ascend_captures/ make good answers).

The fake parses the script ``orchestrator.discover.probe.batch_script`` builds (its step names and
bodies) and answers each step by name, so discovery's parsing, fallbacks and differences run for real;
only the shell is skipped (the cluster tests run it for real).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

from orchestrator.transport.base import RunResult, checked, display_command

_BEGIN = re.compile(r"^echo '?@@(?P<nonce>[0-9a-f]+)@@ begin (?P<name>\S+?)'?$")


@dataclass
class FakeNode:
    """Recorded answers of one node. ``hccn``: (device, "ip"|"link"|"health") -> (exit code, text);
    devices missing from it answer like a healthy NIC (IP <subnet>.<dev>)."""

    host: str
    hostname: str = "node"
    npu_smi: Optional[str] = None  # `npu-smi info` output; None: the tool is absent
    npu_smi_exit: int = 0
    hccn_tool: bool = True
    hccn: dict = field(default_factory=dict)
    hccn_conf: Optional[str] = None
    subnet: str = "10.9.0"
    facts: dict = field(default_factory=dict)  # doctor probe overrides
    probe_exit: int = 0
    calls: list = field(default_factory=list)
    closed: bool = False

    def _step(self, name: str) -> tuple[int, str]:
        if name == "hostname":
            return 0, self.hostname + "\n"
        if name == "npu_smi_path":
            return (0, "/usr/local/sbin/npu-smi\n") if self.npu_smi is not None else (1, "")
        if name == "hccn_tool_path":
            return (0, "/usr/local/Ascend/driver/tools/hccn_tool\n") if self.hccn_tool else (1, "")
        if name == "npu_smi":
            return (self.npu_smi_exit, self.npu_smi) if self.npu_smi is not None else (127, "")
        if name == "hccn_conf":
            return (
                (0, self.hccn_conf)
                if self.hccn_conf is not None
                else (1, "cat: /etc/hccn.conf: No such file\n")
            )
        what, dev = name.rsplit("_", 1)
        if (int(dev), what) in self.hccn:
            return self.hccn[(int(dev), what)]
        return 0, {
            "ip": f"ipaddr:{self.subnet}.{dev}\nnetmask:255.255.255.0\n",
            "link": "link status: UP\n",
            "health": "net health status: Success\n",
        }[what]

    def _batch(self, script: str) -> str:
        out = []
        for line in script.splitlines():
            m = _BEGIN.match(line)
            if m:
                code, text = self._step(m["name"])
                out += [
                    f"@@{m['nonce']}@@ begin {m['name']}",
                    text.rstrip("\n"),
                    f"@@{m['nonce']}@@ end {code}",
                ]
        return "\n".join(out) + "\n"

    def _probe(self) -> str:
        data = {
            "hostname": self.hostname,
            "time": __import__("time").time(),
            "python": "3.11.2",
            "executable": "/usr/bin/python3",
            "packages": {"mindspore": "2.7.1", "mindformers": "1.7.0"},
            "disk_free": 100 * 2**30,
            "disk_path": "/opt/work",
            "busy_ports": [],
        }
        data.update(self.facts)
        return json.dumps(data) + "\n"

    def run(
        self, argv: Sequence[str], *, timeout=60, env=None, stdin=None, check=True, cwd=None
    ) -> RunResult:
        self.calls.append(list(argv))
        if list(argv[:2]) == ["sh", "-c"]:
            code, out = 0, self._batch(argv[2])
        elif "-c" in argv and "import json" in argv[argv.index("-c") + 1]:
            code, out = self.probe_exit, self._probe() if self.probe_exit == 0 else "python: not found\n"
        else:
            code, out = 127, f"{argv[0]}: not found\n"
        return checked(RunResult(self.host, display_command(argv, env, cwd), code, out, "", 0.001), check)

    def open_stream(self, argv, *, env=None, cwd=None, bulk=False):
        raise NotImplementedError

    def put(self, local, remote, *, mode=0o644):
        raise NotImplementedError

    def put_bytes(self, data, remote, *, mode=0o644):
        raise NotImplementedError

    def get(self, remote, local):
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True
