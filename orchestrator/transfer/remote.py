"""The node receiver on a node: where it lives, shipping it, and one receiver session per node and push.

Before a session, ``held`` asks the node in one short command (over the kept SSH connection, not a
bulk stream) whether it holds the target's files as they are, so a re-push of unchanged files opens no
session. A session is one command (``python -S node_receiver-<hash>/node_receiver.py session``) over the
transport's bulk stream: it answers the scan, then takes the receive request and the data, so a node
costs one SSH command per push. A node without this receiver version gets it installed (its sibling
modules first, the main script last, so the script's presence means the folder is whole), then the
session restarts.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from orchestrator.errors import TransportError
from orchestrator.transfer import node_receiver, node_relay, node_store
from orchestrator.transfer.model import Target
from orchestrator.transport import Stream, StreamExit, Transport

RECEIVER_MODULES = (node_store, node_relay, node_receiver)  # shipped in this order: the script last
SCAN_TIMEOUT = 600.0


@lru_cache(maxsize=1)
def receiver_files() -> tuple[tuple[tuple[str, bytes], ...], str]:
    """((file name, content), ...) of the receiver, and the hash of them all."""
    files = tuple((Path(m.__file__).name, Path(m.__file__).read_bytes()) for m in RECEIVER_MODULES)
    h = hashlib.sha256()
    for name, data in files:
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return files, h.hexdigest()[:12]


def receiver_path(workdir: str) -> str:
    """``<workdir>/bin/node_receiver-<hash>/node_receiver.py``: the hash means a node never runs another version."""
    return f"{workdir.rstrip('/')}/bin/node_receiver-{receiver_files()[1]}/node_receiver.py"


def node_cache(workdir: str) -> str:
    return f"{workdir.rstrip('/')}/cache/hashes.json"


def argv(node: Any) -> list[str]:
    return [node.python, "-S", receiver_path(node.workdir), "session"]


def held(t: Transport, target: Target) -> bool:
    """True when the node holds every file of ``target`` as it is (the receiver's ``holds``: size, mtime,
    a hash its cache knows, no stray checkpoint): one short command over ``t``, no bulk session. False
    when it does not, or cannot say (no receiver of this version there yet: the session installs it)."""
    node = target.node
    argv = [node.python, "-S", receiver_path(node.workdir), "holds"]
    res = t.run(argv, stdin=json.dumps(scan_conf(target)).encode(), timeout=SCAN_TIMEOUT, check=False)
    try:
        return res.exit_code == 0 and json.loads(res.stdout.strip().splitlines()[-1]).get("holds") is True
    except (ValueError, IndexError, AttributeError):
        return False


def exclusive_map(target: Target) -> dict[str, list[str]]:
    return {folder: list(keep) for folder, keep in target.exclusive}


def scan_conf(target: Target, verify: bool = False) -> dict:
    """The receiver's ``scan`` request for ``target`` (also what the agent's ``stage`` checks inputs with)."""
    return {"dest": target.dest, "cache": node_cache(target.node.workdir), "verify": verify,
            "files": [vars(i.entry) for i in target.items], "exclusive": exclusive_map(target)}  # fmt: skip


def last_json(host: str, end: StreamExit) -> dict:
    """The JSON answer on the last stdout line, or TransportError with the stderr tail."""
    lines = end.stdout.decode(errors="replace").strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = "\n".join(end.stderr.decode(errors="replace").strip().splitlines()[-8:])
        raise TransportError(
            f"{host}: node receiver exited {end.exit_code} without an answer\n{tail}"
        ) from None


class Session:
    """A receiver session on one node: ``scan`` it, then ``receive`` (and ``send``), then ``answer``."""

    def __init__(self, t: Transport, target: Target):
        self.host, self.target = t.host, target
        self.stream: Optional[Stream] = None
        self.exit_code: Optional[int] = None  # set when the receiver ended without answering
        self._open(t)

    def _open(self, t: Transport) -> None:
        self.stream = t.open_stream(argv(self.target.node), bulk=True)

    def request(self, op: str, conf: dict) -> None:
        self.tell({"op": op, **conf})

    def tell(self, data: Optional[dict]) -> None:
        """One JSON line to the receiver (e.g. where a relay node forwards: ``null`` for nowhere)."""
        assert self.stream is not None
        self.stream.write(json.dumps(data).encode() + b"\n")

    def reply(self, timeout: float) -> dict:
        """The next JSON line the receiver prints (TransportError with its stderr when it ends without)."""
        assert self.stream is not None
        line = self.stream.readline(timeout)
        if not line.strip():
            end = self.stream.wait(30)
            self.exit_code = end.exit_code
            last_json(self.host, end)  # no output: raises, with the stderr tail
        try:
            return json.loads(line)
        except ValueError:
            raise TransportError(f"{self.host}: node receiver said {line[:200]!r}") from None

    def _ask(self, conf: dict) -> dict:
        try:
            self.request("scan", conf)
        except TransportError:
            pass  # the receiver ended at once: reply() says why
        return self.reply(SCAN_TIMEOUT)

    def scan(self, t: Transport, verify: bool = False) -> dict:
        """What the node holds of the target's files (installing the receiver first if it is missing)."""
        target = self.target
        path = receiver_path(target.node.workdir)
        conf = scan_conf(target, verify)
        try:
            return self._ask(conf)
        except TransportError:  # 255: ssh itself failed (unreachable, host key), not the receiver
            if self.exit_code == 255 or t.run(["test", "-f", path], check=False, timeout=30).exit_code == 0:
                raise
        self.close()  # this receiver version is not on the node yet: install it and start again
        folder = path.rsplit("/", 1)[0]
        for name, data in receiver_files()[0]:
            t.put_bytes(data, f"{folder}/{name}", mode=0o755 if name == "node_receiver.py" else 0o644)
        self._open(t)
        return self._ask(conf)

    def answer(self, timeout: float) -> dict:
        """The receive's answer (closes stdin, waits for the receiver to end)."""
        assert self.stream is not None
        return last_json(self.host, self.stream.wait(timeout))

    def done(self) -> None:
        """Nothing more to ask: the receiver ends by itself (``close`` collects it)."""
        if self.stream is not None:
            self.stream.close_stdin()

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None
