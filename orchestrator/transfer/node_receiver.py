"""Node side of `orchestrate push` (one self-contained file, Python 3.9+, standard library only).

Shipped to ``<workdir>/bin/`` and run by the controller over SSH with the node's Python (``-S``: no
site packages to import, it needs none)::

    python -S node_receiver.py session

A session takes requests as JSON lines on stdin (never on the command line, so the relay tokens stay
out of ``ps``) and answers each with one JSON line: any number of ``{"op": "scan", ...}`` (what this
node already holds), then at most one ``{"op": "receive", ...}`` (write a stream of files, optionally
forwarding it to a next node), after which it exits; so one SSH command scans and receives. In
``receive`` the stream follows on stdin, or, with ``listen``, arrives over TCP from the previous node
of a relay chain: the receiver prints ``{"port": N}``, accepts one connection that
starts with the one-time token, and forwards every byte it reads to ``forward`` (the next node) while
writing its own copy. A stream is frames: a 4-byte length and a JSON header (``file``: rel, size,
mtime_ns, sha256, offset; or ``end``), each ``file`` header followed by bytes ``offset..size``.

Each file lands in ``<dest>/<rel>.part`` (kept across interruptions, so a later push appends to its
verified prefix), is hashed while it arrives and checked against its sha256, gets its mtime, is fsynced
(written back in the background while it arrives, so the final fsync is short) and renamed into place.
Hashes of files already on the node are cached in ``cache`` by (path, size, mtime, ctime, inode); a
``.part`` prefix hashed by a scan is not read again by the receive of the same session.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import os
import select
import socket
import struct
import sys
import threading
from typing import Any, BinaryIO, Dict, Optional

VERSION = "2"
CHUNK = 1 << 20
SYNC_EVERY = 64 << 20  # start writing back a file's data every this many bytes
PIPE_SIZE = 1 << 20
HEADER = struct.Struct(">I")
EXCLUSIVE_PATTERNS = ("*.ckpt", "*.ckpt.part")
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


# ---------------------------------------------------------------- hashes


def sha256_file(path: str, limit: Optional[int] = None) -> str:
    """sha256 of the file, or of its first ``limit`` bytes."""
    return _hash_file(path, limit).hexdigest()


def _hash_file(path: str, limit: Optional[int] = None) -> Any:
    h = hashlib.sha256()
    left = os.path.getsize(path) if limit is None else limit
    with open(path, "rb") as f:
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
    return h


class HashCache:
    """sha256 of files by path, valid while size, mtime, ctime and inode are unchanged."""

    def __init__(self, path: Optional[str]):
        self.path, self.entries, self.dirty = path, {}, False
        if path:
            try:
                with open(path) as f:
                    self.entries = json.load(f)
            except (OSError, ValueError):
                self.entries = {}

    @staticmethod
    def _key(st: os.stat_result) -> list:
        return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]

    def sha256(self, path: str, st: os.stat_result, verify: bool = False) -> str:
        entry = self.entries.get(path)
        if not verify and entry and entry[0] == self._key(st):
            return entry[1]
        digest = sha256_file(path)
        self.put(path, digest)
        return digest

    def put(self, path: str, digest: str) -> None:
        self.entries[path] = [self._key(os.stat(path)), digest]
        self.dirty = True

    def save(self) -> None:
        if not (self.path and self.dirty):
            return
        self.entries = {p: e for p, e in self.entries.items() if os.path.exists(p)}  # forget deleted files
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        tmp = f"{self.path}.tmp.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.entries, f)
        os.replace(tmp, self.path)


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


# ---------------------------------------------------------------- receive


class PartWriter:
    """Writes one file's bytes after its trusted ``.part`` prefix, then verifies and renames it.

    ``prefix``: the hash state of exactly the trusted prefix when a scan just computed it (else the
    prefix is read again). Every SYNC_EVERY bytes a background fdatasync starts writing the data back.
    """

    def __init__(self, dest: str, header: Json, trusted: int, prefix: Any = None):
        self.path = os.path.join(dest, header["rel"])
        self.header, self.trusted = header, trusted
        self.written = self.unsynced = 0
        self.syncing: Optional[threading.Thread] = None
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        part = self.path + ".part"
        self.f = open(part, "r+b" if trusted and os.path.exists(part) else "wb")
        self.f.truncate(trusted)
        if trusted and prefix is not None:
            self.hash = prefix.copy()
            self.f.seek(trusted)
        else:
            self.hash = _hash_file(part, trusted) if trusted else hashlib.sha256()
            self.f.seek(trusted)
            if self.f.tell() != trusted or os.fstat(self.f.fileno()).st_size != trusted:
                raise OSError(f"{self.path}.part is shorter than its verified prefix")

    def write(self, pos: int, chunk: Any) -> None:
        """``chunk`` holds the file's bytes from ``pos``; bytes before the trusted prefix are skipped."""
        if pos < self.trusted:
            chunk = chunk[self.trusted - pos :]
        if len(chunk):
            self.f.write(chunk)
            self.hash.update(chunk)
            self.written += len(chunk)
            self.unsynced += len(chunk)
            if self.unsynced >= SYNC_EVERY and not (self.syncing and self.syncing.is_alive()):
                self.unsynced = 0
                self.syncing = threading.Thread(target=os.fdatasync, args=(self.f.fileno(),), daemon=True)
                self.syncing.start()

    def _close(self) -> int:
        self.f.flush()
        if self.syncing is not None:
            self.syncing.join()
        os.fsync(self.f.fileno())
        size = self.f.tell()
        self.f.close()
        return size

    def keep_partial(self) -> Json:
        self._close()
        return {"status": "partial", "written": self.written}

    def finish(self, cache: HashCache) -> Json:
        h = self.header
        size = self._close()
        part = self.path + ".part"
        if size != h["size"] or self.hash.hexdigest() != h["sha256"]:
            os.remove(part)
            return {"status": "bad", "written": self.written, "message": "sha256 mismatch after receiving"}
        os.utime(part, ns=(h["mtime_ns"], h["mtime_ns"]))
        os.replace(part, self.path)
        _fsync_dir(os.path.dirname(self.path) or ".")
        cache.put(self.path, h["sha256"])
        return {"status": "ok", "written": self.written}


class Forwarder:
    """The connection to the next node of a chain; a failure is recorded, never raised."""

    def __init__(self, conf: Optional[Json]):
        self.sock: Optional[socket.socket] = None
        self.error: Optional[str] = None
        if conf:
            try:
                self.sock = socket.create_connection(
                    (conf["host"], conf["port"]), timeout=conf.get("timeout", 10)
                )
                self.sock.settimeout(conf.get("idle_timeout", 300))
                self.sock.sendall(conf["token"].encode() + b"\n")
            except OSError as exc:
                self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.error = f"forward to next node failed: {exc}"
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def send(self, data: bytes) -> None:
        if self.sock is not None:
            try:
                self.sock.sendall(data)
            except OSError as exc:
                self._fail(exc)

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_WR)
                self.sock.recv(1)  # wait until the next node has read everything and closed
            except OSError:
                pass
            self.sock.close()


def _accept(conf: Json) -> BinaryIO:
    """Listen on an ephemeral port, print it, and return the first connection that sends the token."""
    listen = conf["listen"]
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((listen.get("bind", ""), 0))
    server.listen(4)
    print(json.dumps({"port": server.getsockname()[1]}), flush=True)
    token = listen["token"].encode()
    stdin = sys.stdin.buffer
    while True:
        ready, _, _ = select.select([server, stdin], [], [], listen.get("accept_timeout", 120))
        if not ready:
            raise SystemExit("no connection from the previous node")
        if stdin in ready and not stdin.read1(1):
            raise SystemExit("the controller went away before the previous node connected")
        if server in ready:
            conn, _ = server.accept()
            conn.settimeout(10)
            reader = conn.makefile("rb", buffering=CHUNK)  # one reader: it may buffer data after the token
            try:
                got = reader.readline(len(token) + 1).rstrip(b"\n")
            except OSError:
                got = b""
            if hmac.compare_digest(got, token):
                server.close()
                conn.settimeout(listen.get("idle_timeout", 300))
                return reader
            reader.close()
            conn.close()


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


def receive(conf: Json, src: Optional[BinaryIO] = None, parts: Optional[Json] = None) -> Json:
    """Write (and forward) the stream; the answer gives each file's outcome and what was written.

    ``parts``: prefix hash states from this session's scan (see ``scan``).
    """
    dest, cache, wanted = conf["dest"], HashCache(conf.get("cache")), conf.get("files", {})
    if src is None:
        src = _accept(conf) if conf.get("listen") else sys.stdin.buffer
    fwd = Forwarder(conf.get("forward"))
    buf = memoryview(bytearray(CHUNK))  # one buffer for every chunk: no allocation per read
    files: Json = {}
    complete = False
    while True:
        header = read_frame(src)
        if header is None:
            break
        fwd.send(encode_frame(header))
        if header["op"] == "end":
            complete = True
            break
        want = wanted.get(header["rel"])
        writer, error = _writer(dest, header, want, parts or {})
        files[header["rel"]] = _receive_file(src, buf, header, writer, fwd, cache, error)
        if files[header["rel"]].get("status") == "partial":
            break
    fwd.close()
    cache.save()
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


def _receive_file(src: BinaryIO, buf: memoryview, header: Json, writer: Optional[PartWriter],
                  fwd: Forwarder, cache: HashCache, error: Optional[str]) -> Json:  # fmt: skip
    """Copy one file's bytes from ``src`` to ``fwd`` and to ``writer`` (when this node wants it)."""
    pos, size = header["offset"], header["size"]
    while pos < size:
        n = src.readinto(buf[: min(CHUNK, size - pos)])  # type: ignore[attr-defined]  # whole chunks: few calls
        if not n:
            return writer.keep_partial() if writer else {"status": "partial", "written": 0}
        chunk = buf[:n]
        fwd.send(chunk)
        if writer is not None:
            try:
                writer.write(pos, chunk)
            except OSError as exc:
                error, writer = str(exc), None
        pos += n
    if writer is not None:
        try:
            return writer.finish(cache)
        except OSError as exc:
            error = str(exc)
    return {"status": "error", "written": 0, "message": error} if error else {"status": "forwarded"}


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
    if verb != "session":
        sys.stderr.write("usage: node_receiver.py session|version (JSON requests on stdin)\n")
        return 2
    return session()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
