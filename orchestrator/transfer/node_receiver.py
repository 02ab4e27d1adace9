"""Node side of `orchestrate push` (Python 3.9+, standard library only): the session, the scan and the
receive loop. Shipped to ``<workdir>/bin/node_receiver-<hash>/`` with its siblings ``node_store.py``
(hashes, the hash cache, writing a file into place) and ``node_relay.py`` (listener, forwarder,
pipeline stages), and run by the controller over SSH with the node's Python (``-S``: no site packages
to import, it needs none)::

    python -S node_receiver.py session   (or: holds, one scan request on stdin; version)

A session takes requests as JSON lines on stdin (never on the command line, so the relay tokens stay
out of ``ps``) and answers each with one JSON line: any number of ``{"op": "scan", ...}`` (what this
node already holds), then at most one ``{"op": "receive", ...}`` (write a stream of files, optionally
forwarding it to a next node), after which it exits; so one SSH command scans and receives. In
``receive`` the stream follows on stdin, or, with ``listen``, arrives over TCP from the previous node
of a relay chain: the receiver prints ``{"port": N}``, reads where it forwards (one JSON line, with
``forward_later``), and takes the first connection to its cluster address that starts with the
one-time token (``node_relay.Listener``). A stream is frames: a 4-byte
length and a JSON header (``file``: rel, size, mtime_ns, sha256, offset; or ``end``), each ``file``
header followed by bytes ``offset..size``.

The receive is a pipeline: this thread reads each chunk and hands it to the forwarder's thread (the
next node gets it while this one still receives) and to the store thread (write, hash, background
write-back), each through a bounded queue. A ``.part`` prefix hashed by a scan is not read again by
the receive of the same session.
"""

from __future__ import annotations

import fnmatch
import json
import os
import struct
import sys

try:  # on the controller (a package), and on a node (the siblings beside this file, run with -S)
    from orchestrator.transfer import node_store
except ImportError:  # pragma: no cover - the node's way
    import node_store  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: `holds` (each re-push, each launch's stage) imports what it uses
    from typing import Any, BinaryIO, Dict, Optional

    from orchestrator.transfer import node_relay

HashCache, PartWriter = node_store.HashCache, node_store.PartWriter
_hash_file = node_store._hash_file

VERSION = "3"
CHUNK = 1 << 20
PIPE_SIZE = 1 << 20
STORE_DEPTH = 256  # chunks (<= CHUNK each) the store may lag behind: a disk pause does not stall the chain
ACCEPT_S = 120.0  # the previous node must connect within this long
HEADER = struct.Struct(">I")
EXCLUSIVE_PATTERNS = ("*.ckpt", "*.ckpt.part")
if TYPE_CHECKING:
    Json = Dict[str, Any]


# ---------------------------------------------------------------- frames (also used by the controller)


def encode_frame(header: Json) -> bytes:
    data = json.dumps(header, sort_keys=True).encode()
    return HEADER.pack(len(data)) + data


def read_exact(src: BinaryIO, n: int) -> bytes:
    """``n`` bytes from ``src``, fewer only at end of stream."""
    parts, left = [], n
    while left > 0:
        chunk = src.read(left)
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def read_frame(src: BinaryIO) -> Optional[Json]:
    """The next header, or None when the stream ended (cleanly or not)."""
    raw = read_exact(src, HEADER.size)
    if len(raw) < HEADER.size:
        return None
    body = read_exact(src, HEADER.unpack(raw)[0])
    return json.loads(body) if body else None


# ---------------------------------------------------------------- scan


def _stat(path: str) -> Optional[os.stat_result]:
    return os.stat(path) if os.path.isfile(path) else None


def _listdir(path: str) -> list:
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def _exclusive_folders(dest: str, exclusive: Json) -> Json:
    """``exclusive`` with glob keys (``rank_*``) expanded to the matching folders not named otherwise."""
    out = {k: v for k, v in exclusive.items() if "*" not in k}
    names = _listdir(dest)
    for pattern, keep in exclusive.items():
        if "*" in pattern:
            for name in fnmatch.filter(names, pattern):
                if name not in out and os.path.isdir(os.path.join(dest, name)):
                    out[name] = keep
    return out


def _strays(dest: str, exclusive: Json) -> list:
    """Files matching EXCLUSIVE_PATTERNS in the exclusive folders that are not to be kept."""
    out = []
    for folder, keep in sorted(_exclusive_folders(dest, exclusive).items()):
        for name in _listdir(os.path.join(dest, folder)):
            if name not in keep and any(fnmatch.fnmatch(name, p) for p in EXCLUSIVE_PATTERNS):
                out.append(os.path.join(folder, name))
    return out


def scan(conf: Json, parts: Optional[Json] = None) -> Json:
    """Per file: ``same`` (held identically; a wrong mtime is fixed), else the ``.part`` size and hash.

    ``parts`` collects each hashed ``.part``'s (size, hash state) for a later receive to continue from.
    """
    dest, cache = conf["dest"], HashCache(conf.get("cache"))
    files: Json = {}
    for f in conf["files"]:
        path = os.path.join(dest, f["rel"])
        st = _stat(path)
        state: Json = {"same": bool(st) and st.st_size == f["size"]}
        state["same"] = state["same"] and cache.sha256(path, st, conf.get("verify")) == f["sha256"]
        if state["same"]:
            if st.st_mtime_ns != f["mtime_ns"]:
                os.utime(path, ns=(f["mtime_ns"], f["mtime_ns"]))
                cache.put(path, f["sha256"])
                state["mtime_fixed"] = True
        else:
            part = _stat(path + ".part")
            if part is not None and 0 < part.st_size <= f["size"]:
                h = _hash_file(path + ".part", part.st_size)
                state["part_size"], state["part_sha256"] = part.st_size, h.hexdigest()
                if parts is not None:
                    parts[path + ".part"] = (part.st_size, h)
        files[f["rel"]] = state
    cache.save()
    return {
        "ok": True,
        "version": VERSION,
        "files": files,
        "strays": _strays(dest, conf.get("exclusive", {})),
    }


def holds(conf: Json) -> bool:
    """True when this node holds every file of a ``scan`` request as it is (size, mtime and a hash the
    cache already knows) and no stray checkpoint: nothing to push. Never hashes: a file the cache does
    not know is not held (the push's scan then hashes it). The node agent's ``stage`` asks this so a
    launch whose inputs are there opens no push session."""
    dest, cache = conf["dest"], HashCache(conf.get("cache"))
    for f in conf["files"]:
        path = os.path.join(dest, f["rel"])
        st = _stat(path)
        if st is None or st.st_size != f["size"] or st.st_mtime_ns != f["mtime_ns"]:
            return False
        if cache.known(path, st) != f["sha256"]:
            return False
    return not _strays(dest, conf.get("exclusive", {}))


# ---------------------------------------------------------------- receive


def _prune(dest: str, exclusive: Json) -> list:
    folders = _exclusive_folders(dest, exclusive)
    removed = _strays(dest, exclusive)
    for rel in removed:
        os.remove(os.path.join(dest, rel))
    for folder in folders:
        full = os.path.join(dest, folder)
        if os.path.isdir(full) and not os.listdir(full) and folder not in ("", "."):
            os.rmdir(full)
    return removed


class FileJob:
    """One file of the stream on the store thread: open its writer, write chunks, end it (the outcome
    in ``result``). Errors are kept (the stream goes on: later nodes may still want the file)."""

    def __init__(self, dest: str, header: Json, want: Optional[Json], parts: Json, cache: HashCache):
        self.dest, self.header, self.want, self.parts, self.cache = dest, header, want, parts, cache
        self.writer: Optional[PartWriter] = None
        self.error: Optional[str] = None
        self.result: Json = {"status": "partial", "written": 0}

    def open(self) -> None:
        self.writer, self.error = _writer(self.dest, self.header, self.want, self.parts)

    def write(self, pos: int, chunk: bytes) -> None:
        if self.writer is not None:
            try:
                self.writer.write(pos, chunk)
            except OSError as exc:
                self.error, self.writer = str(exc), None

    def end(self, complete: bool) -> None:
        if not complete:
            self.result = self.writer.keep_partial() if self.writer else {"status": "partial", "written": 0}
            return
        if self.writer is not None:
            try:
                self.result = self.writer.finish(self.cache)
                return
            except OSError as exc:
                self.error = str(exc)
        self.result = (
            {"status": "error", "written": 0, "message": self.error}
            if self.error
            else {"status": "forwarded"}
        )


def _relay() -> Any:
    """node_relay (sockets, threads, subprocess): imported by a receive only, never by ``holds`` or ``scan``."""
    try:
        from orchestrator.transfer import node_relay
    except ImportError:  # pragma: no cover - the node's way
        import node_relay  # type: ignore[no-redef]
    return node_relay


def _source(conf: Json) -> BinaryIO:
    if not conf.get("listen"):
        return sys.stdin.buffer
    listener = _relay().Listener(conf["listen"])
    print(json.dumps({"port": listener.port}), flush=True)
    if conf["listen"].get("forward_later"):  # the controller tells where to forward once every node listens
        line = sys.stdin.buffer.readline()
        conf["forward"] = json.loads(line) if line.strip() else None
    return listener.accept(float(conf["listen"].get("accept_timeout", ACCEPT_S)), sys.stdin.buffer)


def receive(conf: Json, src: Optional[BinaryIO] = None, parts: Optional[Json] = None) -> Json:
    """Write (and forward) the stream; the answer gives each file's outcome and what was written.

    ``parts``: prefix hash states from this session's scan (see ``scan``).
    """
    dest, cache, wanted = conf["dest"], HashCache(conf.get("cache")), conf.get("files", {})
    src = src if src is not None else _source(conf)
    relay = _relay()
    fwd, store = relay.Forwarder(conf.get("forward")), relay.Stage("store", STORE_DEPTH)
    jobs: list = []
    complete = False
    while True:
        try:
            header = read_frame(src)
        except OSError:  # the previous node went silent past the idle timeout, or reset the connection
            header = None
        if header is None:
            break
        fwd.send(encode_frame(header))
        if header["op"] == "end":
            complete = True
            break
        job = FileJob(dest, header, wanted.get(header["rel"]), parts or {}, cache)
        jobs.append(job)
        store.put(job.open)
        if not _copy(src, header, job, fwd, store):
            break
    store.close()
    fwd.close()
    cache.save()
    files = {job.header["rel"]: job.result for job in jobs}
    answer: Json = {"ok": complete, "files": files, "forward_error": fwd.error, "interrupted": not complete}
    answer["written"] = sum(f.get("written", 0) for f in files.values())
    if complete:
        answer["removed"] = _prune(dest, conf.get("exclusive", {}))
    return answer


def _writer(dest: str, header: Json, want: Optional[Json], parts: Json) -> tuple:
    """(PartWriter, None) when this node wants the file, (None, None) when not, (None, error) on failure."""
    if want is None:
        return None, None
    trusted = want.get("trusted", 0)
    try:
        if trusted < header["offset"]:
            raise OSError("the stream starts after this node's verified prefix")
        size, prefix = parts.get(os.path.join(dest, header["rel"]) + ".part", (None, None))
        # size, sha256 and mtime the controller sent over SSH win over the (relayed) stream's
        return PartWriter(dest, {**header, **want}, trusted, prefix if size == trusted else None), None
    except OSError as exc:
        return None, str(exc)


def _copy(
    src: BinaryIO, header: Json, job: FileJob, fwd: node_relay.Forwarder, store: node_relay.Stage
) -> bool:
    """Hand one file's bytes from ``src`` to the forwarder and the store; False if the stream ended early."""
    pos, size = header["offset"], header["size"]
    while pos < size:
        try:
            # what has arrived, up to CHUNK: forwarded at once, not after a whole CHUNK (each hop of a
            # chain would add a CHUNK's transfer time); a fresh bytes object: both stages may hold it
            chunk = src.read1(min(CHUNK, size - pos))  # type: ignore[attr-defined]
        except OSError:  # the previous node went silent past the idle timeout, or reset the connection
            chunk = b""
        if not chunk:
            store.put(lambda: job.end(False))
            return False
        fwd.send(chunk)
        store.put(lambda p=pos, c=chunk: job.write(p, c))
        pos += len(chunk)
    store.put(lambda: job.end(True))
    return True


def _answer(data: Json) -> None:
    sys.stdout.write(json.dumps(data, sort_keys=True) + "\n")
    sys.stdout.flush()


def session() -> int:
    """Answer scan requests, then one receive request (see the module docstring); 0 when all went well."""
    try:  # a bigger stdin pipe: the SSH server hands over more at a time
        import fcntl

        fcntl.fcntl(sys.stdin.fileno(), 1031, PIPE_SIZE)  # F_SETPIPE_SZ
    except (ImportError, OSError, ValueError):
        pass
    parts: Json = {}
    while True:
        line = sys.stdin.buffer.readline()
        if not line.strip():
            return 0  # the controller needs nothing more
        request = json.loads(line)
        if request.get("op") == "scan":
            _answer(scan(request, parts))
            continue
        answer = receive(request, parts=parts)
        _answer(answer)
        return 0 if answer["ok"] else 1


def main(argv: list) -> int:
    verb = argv[1] if len(argv) > 1 else ""
    if verb == "version":
        print(json.dumps({"ok": True, "version": VERSION}))
        return 0
    if verb == "holds":  # one scan request on stdin: does this node hold it all as it is (never hashes)
        print(json.dumps({"ok": True, "holds": holds(json.loads(sys.stdin.buffer.read() or b"{}"))}))
        return 0
    if verb != "session":
        sys.stderr.write("usage: node_receiver.py session|holds|version (JSON requests on stdin)\n")
        return 2
    return session()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
