"""``python -m iflytekspark.data pretrain|sft --tokenizer DIR --raw_data_path F.json ...``

Bad input prints one clear message (file, record number, what to fix) and exits with code 2. The output
is written only when complete: a failed or interrupted run (Ctrl-C, SIGTERM) leaves the previous file.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
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


def _exit_on_sigterm(owner: int):
    """SIGTERM raises SystemExit in this process (so the temporary output is removed); forked workers
    exit at once, as by default."""

    def handler(signum, frame):
        if os.getpid() != owner:
            os._exit(128 + signum)
        raise SystemExit(128 + signum)

    return handler


def main(argv: Optional[List[str]] = None) -> int:
    opts = parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm(os.getpid())) if main_thread else None
    try:
        summary = preprocess(opts)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"error: interrupted; {opts.output_filename} was not changed", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
