"""The node agent as one file (controller side): a zipapp built deterministically from this checkout.

The archive holds ``orchestrator/agent/node/`` (the agent), the npu-smi parser of
``orchestrator/ascend/`` (one copy, the controller's own), the push receiver's modules (``stage`` asks
its ``holds`` whether a job's inputs are there: the same check as a push's) and empty ``__init__.py``
files for ``orchestrator``, ``orchestrator.agent``, ``orchestrator.ascend`` and
``orchestrator.transfer`` (so nothing else of the controller runs, or is imported, on a node), plus ``__main__.py`` (``zipapp_main.py``: on a node the archive is
unpacked once beside itself, so Python caches the agent's bytecode). Entries
are sorted, dated 1980-01-01 and 0644, so the same sources give the same bytes; the file's name carries
the first 12 hex digits of their SHA-256 (``orchestrate-agent-<sha12>.pyz``), so a node holding that name
holds that agent and the agent is written only when missing.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # orchestrator/
SOURCES = ("agent/node",)  # folders of orchestrator/ shipped whole (their *.py)
FILES = ("ascend/common.py", "ascend/npu_smi.py", "ascend/npu_smi_queries.py",  # the npu-smi parser
         "transfer/node_store.py", "transfer/node_relay.py", "transfer/node_receiver.py")  # fmt: skip
STUBS = {"orchestrator/__init__.py": b"", "orchestrator/agent/__init__.py": b"",
         "orchestrator/ascend/__init__.py": b"", "orchestrator/transfer/__init__.py": b""}  # fmt: skip
MAIN = PACKAGE / "agent" / "zipapp_main.py"  # the archive's __main__.py: unpacks it once, runs the agent
EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class AgentBundle:
    """The built agent: its file name on a node and its bytes."""

    name: str
    data: bytes


def members() -> dict[str, bytes]:
    """Archive path -> content of everything the agent needs, read from this checkout."""
    out = dict(STUBS, **{"__main__.py": MAIN.read_bytes()})
    for folder in SOURCES:
        for src in sorted((PACKAGE / folder).glob("*.py")):
            out[f"orchestrator/{folder}/{src.name}"] = src.read_bytes()
    for rel in FILES:
        out[f"orchestrator/{rel}"] = (PACKAGE / rel).read_bytes()
    return out


def build_zip(files: dict[str, bytes]) -> bytes:
    """A zip of ``files`` in path order with fixed dates and modes (same input, same bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, EPOCH)
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            z.writestr(info, files[path], compresslevel=9)
    return buf.getvalue()


@lru_cache(maxsize=1)
def agent_bundle() -> AgentBundle:
    """This checkout's agent (built once per process)."""
    files = members()
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(f"{path}\0{len(files[path])}\0".encode() + files[path])
    return AgentBundle(f"orchestrate-agent-{digest.hexdigest()[:12]}.pyz", build_zip(files))


def write_local(folder: Path) -> Path:
    """The agent written into ``folder`` on this machine (tests, local runs); its path."""
    bundle = agent_bundle()
    path = folder / bundle.name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bundle.data)
        tmp.replace(path)
    return path
