"""``python -m iflytekspark.data pretrain|sft --tokenizer DIR --raw_data_path F.json ...``

Bad input prints one clear message (file, record number, what to fix) and exits with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from .pipeline import PreprocessOptions, preprocess
from .records import DataError


def parse_args(argv: Optional[List[str]] = None) -> PreprocessOptions:
    parser = argparse.ArgumentParser(prog="python -m iflytekspark.data", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["pretrain", "sft"])
    parser.add_argument("--tokenizer", required=True, help="tokenizer directory (*.model and *.vocab)")
    parser.add_argument("--raw_data_path", required=True, help="alpaca-style JSON array")
    parser.add_argument("--output_filename", default="train_dataset.mindrecord", help="*.mindrecord to write")
    parser.add_argument("--seq_length", type=int, default=32768, help="model seq_length; rows hold +1 ids")
    parser.add_argument("--pad_id", type=int, default=0)
    parser.add_argument(
        "--workers",
        type=int,
        default=max(1, min(4, (os.cpu_count() or 1) - 1)),
        help="tokenising processes (default: one core left for reading, packing and writing)",
    )
    parser.add_argument(
        "--overlong", choices=["truncate", "reject"], default="truncate", help="SFT samples longer than a row"
    )
    a = parser.parse_args(argv)
    return PreprocessOptions(
        a.kind, a.tokenizer, a.raw_data_path, a.output_filename, a.seq_length, a.pad_id, a.workers, a.overlong
    )


def main(argv: Optional[List[str]] = None) -> int:
    opts = parse_args(argv)
    try:
        summary = preprocess(opts)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
