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


CANN_STEPS = {  # doctor's CANN steps answered like a default install of the pinned pairing
    "cann_dir": (0, "/usr/local/Ascend/ascend-toolkit/latest\n"),
    "cann_env": (0, "/usr/local/Ascend/ascend-toolkit/set_env.sh\n"),
    "cann_info": (
        0,
        "package_name=Ascend-cann-toolkit\nversion=8.3.RC1\ninnerversion=V100R001C23SPC001B231\n"
        "arch=aarch64\nos=linux\npath=/usr/local/Ascend/ascend-toolkit/8.3.RC1/aarch64-linux\n",
    ),
    "driver_info": (0, "Version=25.3.rc1\nascendhal_version=7.35.23\npackage_version=25.3.rc1\n"),
}


def spod_text(server_index: int, npu: int, chip: int, super_pod_id: int = 0, size: int = 384) -> str:
    """`npu-smi info -t spod-info` as npu-smi prints it ("\\t%-30s : %u"); the SDID packs the server
    index (bits 22-31), NPU (18-21), die (16-17) and device id npu*2+die (0-15)."""
    sdid = (server_index << 22) | (npu << 18) | (chip << 16) | (npu * 2 + chip)
    rows = (
        ("SDID", sdid),
        ("Super Pod Size", size),
        ("Super Pod ID", super_pod_id),
        ("Server Index", server_index),
    )
    return "".join(f"\t{key:<30} : {value}\n" for key, value in rows)


@dataclass
class FakeNode:
    """Recorded answers of one node. ``hccn``: (device, "ip"|"link"|"health") -> (exit code, text);
    devices missing from it answer like a healthy NIC (IP <subnet>.<dev>). ``spod``: (npu, chip) ->
    (exit code, text) of `npu-smi info -t spod-info`; chips missing from it answer in npu-smi's format
    with the SDID layout of an A3 chip in server ``server_index`` of SuperPoD ``super_pod_id``.
    ``cann``: doctor's CANN steps (cann_dir, cann_env, cann_info, driver_info) -> (exit code, text);
    missing steps answer like an install of the pinned pairing (CANN 8.3.RC1, driver 25.3.rc1)."""

    host: str
    hostname: str = "node"
    npu_smi: Optional[str] = None  # `npu-smi info` output; None: the tool is absent
    npu_smi_exit: int = 0
    hccn_tool: bool = True
    hccn: dict = field(default_factory=dict)
    hccn_conf: Optional[str] = None
    subnet: str = "10.9.0"
    facts: dict = field(default_factory=dict)  # doctor probe overrides
    spod: dict = field(default_factory=dict)
    server_index: int = 0
    super_pod_id: int = 0
    cann: dict = field(default_factory=dict)
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
        if name.startswith("spod_"):
            npu, chip = (int(x) for x in name.split("_")[1:])
            return self.spod.get((npu, chip)) or (
                0,
                spod_text(self.server_index, npu, chip, self.super_pod_id),
            )
        if name in CANN_STEPS:
            return self.cann.get(name, CANN_STEPS[name])
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
