"""One preprocessing run: read, encode in parallel, pack, write MindRecord, and summarise."""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import List, Optional

from ..tokenizer import TokenizerError
from .encoding import Encoder
from .output import output_problems, staged
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


def option_problems(opts: PreprocessOptions) -> List[str]:
    """What is wrong with ``opts`` on its own (no file is read)."""
    problems = []
    if opts.kind not in ("pretrain", "sft"):
        problems.append(f"kind must be pretrain or sft, not {opts.kind!r}")
    if not opts.output_filename.endswith(".mindrecord"):
        problems.append(f"--output_filename {opts.output_filename}: must end in .mindrecord")
    else:
        problems += output_problems(Path(opts.output_filename))
    if opts.seq_length < 1:
        problems.append(f"--seq_length {opts.seq_length}: must be at least 1")
    if opts.workers < 1:
        problems.append(f"--workers {opts.workers}: must be at least 1")
    if opts.overlong not in ("truncate", "reject"):
        problems.append(f"--overlong {opts.overlong}: must be truncate or reject")
    return problems


def check_options(opts: PreprocessOptions) -> Encoder:
    """Check every option, the tokenizer and ``--pad_id`` against it, before any work; return the
    (not yet started) encoder or raise :class:`DataError` listing all problems."""
    problems = option_problems(opts)
    encoder = None
    try:
        encoder = Encoder(opts.tokenizer, opts.kind, opts.workers)
    except TokenizerError as exc:
        problems.append(f"--tokenizer: {exc}")
    if encoder is not None:
        size = encoder.tokenizer.vocab_size
        if not 0 <= opts.pad_id < size:
            problems.append(
                f"--pad_id {opts.pad_id}: must be a token id of the tokenizer, 0 to {size - 1} "
                f"({opts.tokenizer} has {size} pieces)"
            )
    elif opts.pad_id < 0:
        problems.append(f"--pad_id {opts.pad_id}: must be a token id of the tokenizer (0 or more)")
    if problems:
        raise DataError("bad options:\n" + "\n".join(f"  {p}" for p in problems))
    assert encoder is not None
    return encoder


def no_rows(opts: PreprocessOptions, stats: PackStats) -> DataError:
    """The error of a run that would write an empty MindRecord."""
    if stats.rejected:
        why = (
            f"all {stats.rejected} sample(s) were rejected as over-long (more than seq_length + 1 = "
            f"{opts.seq_length + 1} ids, --seq_length {opts.seq_length}); raise --seq_length or use "
            "--overlong truncate"
        )
    else:
        why = f"{stats.samples} sample(s) gave no tokens"
    return DataError(f"no rows to write: {why}; {opts.output_filename} was not written")


def preprocess(opts: PreprocessOptions, out: Optional[Path] = None) -> Summary:
    """Run the whole preprocessing of ``opts``; raise :class:`DataError` on bad input.

    The output appears only when complete (see :mod:`.output`); an existing one stays until then."""
    encoder = check_options(opts)
    start = time.perf_counter()
    required = ("output",) if opts.kind == "pretrain" else ("instruction", "output")
    records = load_records(opts.raw_data_path, required)
    row_len = opts.seq_length + 1
    stats = PackStats()
    path = Path(opts.output_filename)
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
        first = next(rows, None)
        if first is None:
            raise no_rows(opts, stats)
        with staged(path) as temp:
            write_mindrecord(temp, chain([first], rows), columns)
    return Summary(stats, time.perf_counter() - start, path)
