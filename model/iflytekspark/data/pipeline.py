"""One preprocessing run: read, encode in parallel, pack, write MindRecord, and summarise."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..tokenizer import TokenizerError
from .encoding import Encoder
from .packing import PackStats, pack_pretrain, pack_sft
from .records import DataError, load_records


@dataclass(frozen=True)
class PreprocessOptions:
    """The command line of ``python -m iflytekspark.data`` (reference flag names)."""

    kind: str  # "pretrain" or "sft"
    tokenizer: str  # tokenizer directory (*.model + *.vocab)
    raw_data_path: str  # alpaca-style JSON array
    output_filename: str  # ends in .mindrecord
    seq_length: int  # the model's seq_length; rows hold seq_length + 1 ids
    pad_id: int = 0
    workers: int = 1
    overlong: str = "truncate"  # SFT samples longer than a row: "truncate" or "reject"


@dataclass(frozen=True)
class Summary:
    """What a run wrote, and how fast (seconds exclude the one-off mindspore import)."""

    stats: PackStats
    seconds: float
    output: Path

    def lines(self) -> list:
        s, secs = self.stats, max(self.seconds, 1e-9)
        return [
            f"wrote {self.output}",
            f"samples {s.samples}  rows {s.rows}  tokens {s.tokens}  padding {s.padding}",
            f"truncated {s.truncated}  rejected {s.rejected}  tokens dropped {s.dropped_tokens}",
            f"time {self.seconds:.2f} s  rows/s {s.rows / secs:.1f}  tokens/s {s.tokens / secs:.0f}",
        ]


def check_options(opts: PreprocessOptions) -> None:
    problems = []
    if opts.kind not in ("pretrain", "sft"):
        problems.append(f"kind must be pretrain or sft, not {opts.kind!r}")
    if not opts.output_filename.endswith(".mindrecord"):
        problems.append(f"--output_filename {opts.output_filename}: must end in .mindrecord")
    if opts.seq_length < 1:
        problems.append(f"--seq_length {opts.seq_length}: must be at least 1")
    if opts.workers < 1:
        problems.append(f"--workers {opts.workers}: must be at least 1")
    if opts.overlong not in ("truncate", "reject"):
        problems.append(f"--overlong {opts.overlong}: must be truncate or reject")
    if problems:
        raise DataError("bad options:\n" + "\n".join(f"  {p}" for p in problems))


def preprocess(opts: PreprocessOptions, out: Optional[Path] = None) -> Summary:
    """Run the whole preprocessing of ``opts``; raise :class:`DataError` on bad input."""
    check_options(opts)
    start = time.perf_counter()
    required = ("output",) if opts.kind == "pretrain" else ("instruction", "output")
    records = load_records(opts.raw_data_path, required)
    row_len = opts.seq_length + 1
    stats = PackStats()
    try:
        encoder = Encoder(opts.tokenizer, opts.kind, opts.workers)
    except TokenizerError as exc:
        raise DataError(f"--tokenizer: {exc}") from None
    with encoder:
        imported = time.perf_counter()
        from .writer import write_mindrecord  # after the workers forked: it brings in mindspore

        start += time.perf_counter() - imported  # the one-off mindspore import is not throughput

        samples = encoder.encode(records)
        if opts.kind == "pretrain":
            rows = pack_pretrain(samples, row_len, opts.pad_id, stats)
            columns = ["input_ids"]
        else:
            rows = pack_sft(samples, row_len, opts.pad_id, opts.overlong, stats)
            columns = ["input_ids", "loss_mask"]
        path = Path(opts.output_filename)
        write_mindrecord(path, rows, columns)
    return Summary(stats, time.perf_counter() - start, path)
