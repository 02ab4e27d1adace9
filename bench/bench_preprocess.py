"""Preprocessing throughput (tokens/s) of ``python -m iflytekspark.data`` with 1 and 2 tokenising processes.

A generated alpaca corpus (``--records``, default 40000) and the small test tokenizer (400 pieces);
pretrain and SFT, seq_length 2048. Each run is its own process; its summary reports tokens/s over
reading, tokenising, packing and writing (the one-off mindspore import excluded). The baseline is the
single-process run of the same kind.
Run: ``.venv/bin/python bench/bench_preprocess.py [--records N]``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def run(kind: str, tokenizer: Path, corpus: Path, out: Path, workers: int) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "iflytekspark.data",
        kind,
        "--tokenizer",
        str(tokenizer),
        "--raw_data_path",
        str(corpus),
        "--output_filename",
        str(out),
        "--seq_length",
        "2048",
        "--workers",
        str(workers),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    numbers = dict(re.findall(r"([a-z/]+) ([\d.]+)", proc.stdout))
    return {k: float(numbers[k]) for k in ("samples", "rows", "tokens", "time", "tokens/s", "rows/s")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=40000)
    args = parser.parse_args()
    from iflytekspark.testing import build_tokenizer, write_corpus

    with tempfile.TemporaryDirectory(prefix="bench_preprocess_") as tmp:
        folder = Path(tmp)
        tokenizer = build_tokenizer(folder / "tokenizer")
        corpus = write_corpus(folder / "corpus.json", n=args.records, max_words=60)
        print(f"preprocessing throughput: {args.records} records, seq_length 2048, 400-piece tokenizer")
        for kind in ("pretrain", "sft"):
            base = None
            for workers in (1, 2):
                r = run(kind, tokenizer, corpus, folder / f"{kind}{workers}.mindrecord", workers)
                base = base or r["tokens/s"]
                print(
                    f"  {kind:8s} workers {workers}: {r['tokens/s']:9.0f} tokens/s  {r['rows/s']:7.1f} rows/s  "
                    f"({int(r['tokens'])} tokens, {int(r['rows'])} rows, {r['time']:.2f} s)  "
                    f"x{r['tokens/s'] / base:.2f} of 1 process"
                )


if __name__ == "__main__":
    main()
