"""Writing packed rows to a MindRecord file (the only part of preprocessing that needs mindspore)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from mindspore.mindrecord import FileWriter

from .packing import Row

BATCH = 1024  # rows per write_raw_data call


def write_mindrecord(path: Path, rows: Iterable[Row], columns: Sequence[str]) -> None:
    """Write ``rows`` to ``path`` (and its ``.db``) with int64 columns ``columns`` (input_ids, and loss_mask
    for SFT). ``path`` must not exist: the pipeline writes into a fresh folder (see :mod:`.output`)."""
    writer = FileWriter(file_name=str(path), shard_num=1, overwrite=False)
    writer.add_schema({c: {"type": "int64", "shape": [-1]} for c in columns}, "iflytekspark")
    batch = []
    for ids, mask in rows:
        row = {"input_ids": ids, "loss_mask": mask}
        batch.append({c: np.ascontiguousarray(row[c], dtype=np.int64) for c in columns})
        if len(batch) == BATCH:
            writer.write_raw_data(batch)
            batch = []
    if batch:
        writer.write_raw_data(batch)
    writer.commit()
