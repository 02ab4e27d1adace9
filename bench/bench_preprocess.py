"""Preprocessing throughput (tokens/s) of ``python -m iflytekspark.data`` with 1 and 2 tokenising processes.

A generated alpaca corpus (``--records``, default 40000) and the small test tokenizer (400 pieces);
pretrain and SFT, seq_length 2048. Each run is its own process; its summary reports the seconds spent
reading, tokenising, packing and writing (the one-off mindspore import excluded), which is the sample.
Baseline: the single-process run of the same kind (``--workers 1``): the ratio says what a second
tokenising process buys on this machine. Each repeat runs all four (order rotating).
Run: ``.venv/bin/python bench/bench_preprocess.py [--records N] [--repeats 3] [--json]``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import Report, Seconds, arguments, interleave, log, stdout_to_stderr

BASELINE = "1 process"
WORKERS = {BASELINE: 1, "2 processes": 2}


def run(kind: str, tokenizer: Path, corpus: Path, out_dir: Path, workers: int) -> dict:
    """One preprocessing process into a fresh folder (removed after); the figures of its summary line."""
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir()
    cmd = [sys.executable, "-m", "iflytekspark.data", kind, "--tokenizer", str(tokenizer), "--raw_data_path",
           str(corpus), "--output_filename", str(out_dir / "out.mindrecord"), "--seq_length", "2048",
           "--workers", str(workers)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    numbers = dict(re.findall(r"([a-z/]+) ([\d.]+)", proc.stdout))
    return {k: float(numbers[k]) for k in ("samples", "rows", "tokens", "time", "tokens/s", "rows/s")}


def main(argv=None) -> None:
    parser = arguments(__doc__, repeats=3)
    parser.add_argument("--records", type=int, default=40000)
    args = parser.parse_args(argv)
    report = Report("bench_preprocess", BASELINE, args.repeats, "speedup",
                    dict(records=args.records, seq_length=2048, tokenizer_pieces=400))  # fmt: skip
    from iflytekspark.testing import build_tokenizer, write_corpus

    tokens: dict[str, float] = {}
    with stdout_to_stderr(args.json), tempfile.TemporaryDirectory(prefix="bench_preprocess_") as tmp:
        folder = Path(tmp)
        tokenizer = build_tokenizer(folder / "tokenizer")
        corpus = write_corpus(folder / "corpus.json", n=args.records, max_words=60)
        log(f"preprocessing {args.records} records, {args.repeats} repeat(s) ...")

        def case(kind: str, name: str):
            def one() -> Seconds:
                r = run(kind, tokenizer, corpus, folder / "out", WORKERS[name])
                tokens[kind] = r["tokens"]
                # the summary's tokens/s has more digits than its time: seconds from it
                return Seconds(r["tokens"] / r["tokens/s"] if r["tokens/s"] else r["time"])

            return (kind, name), one

        samples = interleave(
            [case(kind, name) for kind in ("pretrain", "sft") for name in WORKERS], args.repeats
        )
    report.add(samples)
    for kind, name in samples:
        report.rate((kind, name), tokens[kind], "tokens")
    report.extra["tokens"] = tokens
    report.emit(args.json)


if __name__ == "__main__":
    main()
