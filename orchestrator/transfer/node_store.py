"""Node side of `orchestrate push`: hashes, the hash cache, and writing one file into place (Python 3.9+,
standard library only; shipped beside ``node_receiver.py``).

Each file lands in ``<dest>/<rel>.part`` (kept across interruptions, so a later push appends to its
verified prefix), is hashed while it arrives and checked against its sha256, gets its mtime, is fsynced
(its write-back started while it arrives, so the final fsync is short) and renamed into place.
Hashes of files already on the node are cached by (path, size, mtime, ctime, inode).
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: a node's `holds` imports no more than it uses
    from typing import Any, Dict, Optional

CHUNK = 1 << 20
SYNC_EVERY = 16 << 20  # start writing back a file's data every this many bytes (the final fsync stays short)
SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writing the range back, do not wait
if TYPE_CHECKING:
    Json = Dict[str, Any]


def sha256_file(path: str, limit: Optional[int] = None) -> str:
    """sha256 of the file, or of its first ``limit`` bytes."""
    return _hash_file(path, limit).hexdigest()


def new_sha256() -> Any:
    import hashlib  # here, not at the top: `holds` never hashes (loading OpenSSL is 3 ms of its 30)

    return hashlib.sha256()


def _hash_file(path: str, limit: Optional[int] = None) -> Any:
    h = new_sha256()
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

    def known(self, path: str, st: os.stat_result) -> Optional[str]:
        """The cached sha256 of ``path`` as ``st`` finds it, None when not cached (never hashes)."""
        entry = self.entries.get(path)
        return entry[1] if entry and entry[0] == self._key(st) else None

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


def _sync_file_range() -> Any:
    """libc's ``sync_file_range`` (Linux), or None: starts write-back without waiting for it, unlike
    fdatasync, which on some disks stalls the writes that go on meanwhile."""
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
        fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        return fn
    except (ImportError, OSError, AttributeError):
        return None


_UNSET: Any = object()
START_WRITEBACK: Any = _UNSET  # sync_file_range, looked up by the first write (ctypes is slow to load)


def _start_writeback() -> Any:
    global START_WRITEBACK
    if START_WRITEBACK is _UNSET:
        START_WRITEBACK = _sync_file_range()
    return START_WRITEBACK


def fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PartWriter:
    """Writes one file's bytes after its trusted ``.part`` prefix, then verifies and renames it.

    ``prefix``: the hash state of exactly the trusted prefix when a scan just computed it (else the
    prefix is read again). Every SYNC_EVERY bytes, write-back of what was written starts (without
    waiting), so the final fsync is short.
    """

    def __init__(self, dest: str, header: Json, trusted: int, prefix: Any = None):
        self.path = os.path.join(dest, header["rel"])
        self.header, self.trusted = header, trusted
        self.written = self.unsynced = 0
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        part = self.path + ".part"
        self.f = open(part, "r+b" if trusted and os.path.exists(part) else "wb", buffering=0)
        self.f.truncate(trusted)
        if trusted and prefix is not None:
            self.hash = prefix.copy()
            self.f.seek(trusted)
        else:
            self.hash = _hash_file(part, trusted) if trusted else new_sha256()
            self.f.seek(trusted)
            if self.f.tell() != trusted or os.fstat(self.f.fileno()).st_size != trusted:
                raise OSError(f"{self.path}.part is shorter than its verified prefix")

    def write(self, pos: int, chunk: Any) -> None:
        """``chunk`` holds the file's bytes from ``pos``; bytes before the trusted prefix are skipped."""
        if pos < self.trusted:
            chunk = memoryview(chunk)[self.trusted - pos :]
        if len(chunk):
            view = memoryview(chunk)
            while view:
                view = view[self.f.write(view) :]
            self.hash.update(chunk)
            self.written += len(chunk)
            self.unsynced += len(chunk)
            writeback = _start_writeback() if self.unsynced >= SYNC_EVERY else None
            if writeback is not None:
                end = self.f.tell()
                writeback(self.f.fileno(), end - self.unsynced, self.unsynced, SYNC_FILE_RANGE_WRITE)
                self.unsynced = 0

    def _close(self) -> int:
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
        fsync_dir(os.path.dirname(self.path) or ".")
        cache.put(self.path, h["sha256"])
        return {"status": "ok", "written": self.written}
