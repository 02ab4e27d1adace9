"""Gather the facts doctor checks from one node: one run of the node's python with a tiny script.

The script (stdlib only, Python 3.9+) prints JSON: hostname, wall clock, Python version, package
versions read with importlib.metadata (importing MindSpore would take seconds), free disk in the
work folder (or its nearest existing parent) and which of the given ports cannot be bound.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Optional, Sequence

from orchestrator.errors import TransportError
from orchestrator.transport.base import Transport

PACKAGES = ("mindspore", "mindformers")

PROBE = r"""
import json, os, platform, shutil, socket, sys, time
try:
    from importlib import metadata
except ImportError:
    metadata = None
def version(name):
    try:
        return metadata.version(name)
    except Exception:
        return None
def disk(path):
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    path = path or "/"
    return shutil.disk_usage(path).free, path
def busy(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", port))
        return False
    except OSError:
        return True
    finally:
        s.close()
workdir, names, ports = sys.argv[1], sys.argv[2].split(","), [int(p) for p in sys.argv[3:]]
free, where = disk(workdir)
print(json.dumps({
    "hostname": socket.gethostname(), "time": time.time(), "python": platform.python_version(),
    "executable": sys.executable, "packages": {n: version(n) for n in names},
    "disk_free": free, "disk_path": where, "busy_ports": [p for p in ports if busy(p)],
}))
"""


@dataclass(frozen=True)
class NodeFacts:
    """What the probe reported. ``clock_offset_s``: node clock minus controller clock, taken as the
    node's time (read just before it answered) minus the controller's when the answer came; the true
    offset is larger by at most ``clock_error_s`` (the round trip)."""

    host: str
    hostname: str
    clock_offset_s: float
    clock_error_s: float
    python: str
    executable: str
    packages: tuple[tuple[str, Optional[str]], ...]
    disk_path: str
    disk_free_bytes: int
    busy_ports: tuple[int, ...]

    def package(self, name: str) -> Optional[str]:
        return dict(self.packages).get(name)


def probe_facts(
    transport: Transport, python: str, workdir: str, ports: Sequence[int], *, timeout: float = 30
) -> NodeFacts:
    """Run the probe with the node's ``python``; TransportError when that python cannot run it."""
    argv = [python, "-I", "-c", PROBE, workdir, ",".join(PACKAGES), *map(str, ports)]
    before = time.time()
    result = transport.run(argv, timeout=timeout, check=False)
    after = time.time()
    if result.exit_code != 0:
        tail = (result.stderr or result.stdout).strip()[-300:]
        raise TransportError(
            f"{transport.host}: node python {python} failed (exit {result.exit_code}): {tail}"
        )
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise TransportError(f"{transport.host}: unreadable probe output: {result.stdout[-300:]!r}") from None
    return NodeFacts(
        host=transport.host,
        hostname=data["hostname"],
        clock_offset_s=data["time"] - after,
        clock_error_s=after - before,
        python=data["python"],
        executable=data["executable"],
        packages=tuple((n, data["packages"].get(n)) for n in PACKAGES),
        disk_path=data["disk_path"],
        disk_free_bytes=int(data["disk_free"]),
        busy_ports=tuple(data["busy_ports"]),
    )
