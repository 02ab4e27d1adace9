"""MindSpore checkpoint files in the stand-in: the protobuf layout MindSpore writes, tiny content.

A ``.ckpt`` is a ``Checkpoint`` message: repeated ``value`` (field 1) records, each ``{tag: string = 1;
tensor: TensorProto = 2}`` with ``TensorProto {dims: repeated int64 = 1; tensor_type: string = 2;
tensor_content: bytes = 3}``. The stand-in writes ``step_num`` and ``epoch_num`` (what MindFormers
resumes from, and what ``orchestrator/launch/resume_point.py`` reads) plus one small weight.
"""

from __future__ import annotations

import glob
import os
import struct
from typing import Dict, Iterator, Optional, Tuple


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _tensor(dtype: str, content: bytes, dims: Tuple[int, ...]) -> bytes:
    head = b"".join(_varint(1 << 3 | 0) + _varint(d) for d in dims)
    return head + _field(2, dtype.encode()) + _field(3, content)


def encode(values: Dict[str, Tuple[str, bytes, Tuple[int, ...]]]) -> bytes:
    """``{tag: (tensor_type, content, dims)}`` -> the checkpoint bytes."""
    return b"".join(_field(1, _field(1, tag.encode()) + _field(2, _tensor(*t))) for tag, t in values.items())


def write(path: str, step: int, epoch: int, rank: int) -> None:
    """A checkpoint of global ``step`` (written to a temp name, then renamed, as MindSpore does)."""
    weight = struct.pack("<4f", *(0.01 * (step + i + rank) for i in range(4)))
    data = encode(
        {
            "model.weight": ("Float32", weight, (2, 2)),
            "epoch_num": ("Int64", struct.pack("<q", epoch), (1,)),
            "step_num": ("Int64", struct.pack("<q", step), (1,)),
        }
    )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _fields(buf: bytes) -> Iterator[Tuple[int, bytes]]:
    i = 0
    while i < len(buf):
        key, shift = 0, 0
        while True:
            key |= (buf[i] & 0x7F) << shift
            i += 1
            if buf[i - 1] < 0x80:
                break
            shift += 7
        if key & 7 == 0:
            while buf[i] >= 0x80:
                i += 1
            i += 1
            continue
        n, shift = 0, 0
        while True:
            n |= (buf[i] & 0x7F) << shift
            i += 1
            if buf[i - 1] < 0x80:
                break
            shift += 7
        yield key >> 3, buf[i : i + n]
        i += n


def read_step(path: str) -> Optional[int]:
    """``step_num`` of a checkpoint file (None if it has none)."""
    with open(path, "rb") as f:
        data = f.read()
    for num, value in _fields(data):
        if num != 1:
            continue
        parts = dict(_fields(value))
        if parts.get(1, b"").decode("utf-8", "replace") != "step_num":
            continue
        tensor = dict(_fields(parts.get(2, b"")))
        content = tensor.get(3, b"")
        if len(content) == 8:
            return struct.unpack("<q", content)[0]
    return None


def resume_step(load_checkpoint: str, rank: int) -> Tuple[Optional[str], int]:
    """(file, step) MindFormers would resume rank ``rank`` from: the newest ``.ckpt`` of
    ``<load_checkpoint>/rank_<rank>/`` (or the file itself); (None, 0) when there is none."""
    if os.path.isfile(load_checkpoint):
        files = [load_checkpoint]
    else:
        files = glob.glob(os.path.join(load_checkpoint, f"rank_{rank}", "*.ckpt"))
    if not files:
        return None, 0
    newest = max(files, key=os.path.getmtime)
    return newest, read_step(newest) or 0
