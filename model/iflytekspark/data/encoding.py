"""Turning records into token ids, in parallel worker processes (sentencepiece only, no mindspore).

Pretrain samples are ``output + "<end>"``. SFT samples are the prompt ``"<User> " + (instruction + input)
+ "<end><Bot> "`` (loss mask 0) followed by the response ``output + "<end>"`` (loss mask 1), each part
encoded on its own as the reference does. Text is cleaned here (:func:`.records.clean`): the joined
``instruction + input`` once, so a space or newline where the two meet survives, and the output.
A sample is ``(ids, prompt_len)``: ids an int32 array, the first prompt_len of them masked out (0 for
pretrain). Workers send each chunk back as three flat arrays, which pickle far faster than lists of
Python ints.
"""

from __future__ import annotations

import multiprocessing as mp
from itertools import chain
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..tokenizer import Tokenizer
from .records import Record, clean

CHUNK = 512  # records per task sent to a worker

Sample = Tuple[np.ndarray, int]  # (ids, prompt_len)
Encoded = Tuple[np.ndarray, np.ndarray, np.ndarray]  # flat ids, sample lengths, prompt lengths

_worker_tokenizer: Optional[Tokenizer] = None


def prompt_text(rec: Record) -> str:
    return f"<User> {clean(rec.instruction + rec.input)}<end><Bot> "


def response_text(rec: Record) -> str:
    return f"{clean(rec.output)}<end>"


def encode_chunk(tok: Tokenizer, kind: str, records: Sequence[Record]) -> Encoded:
    """Encode ``records`` for ``kind`` ("pretrain" or "sft") into flat arrays."""
    responses = tok.encode_batch([response_text(r) for r in records])
    prompts = tok.encode_batch([prompt_text(r) for r in records]) if kind == "sft" else [[]] * len(records)
    prompt_lens = np.array([len(p) for p in prompts], dtype=np.int64)
    lengths = prompt_lens + np.array([len(r) for r in responses], dtype=np.int64)
    parts = (piece for p, r in zip(prompts, responses) for piece in (p, r))
    flat = np.fromiter(chain.from_iterable(parts), dtype=np.int32, count=int(lengths.sum()))
    return flat, lengths, prompt_lens


def samples_of(encoded: Encoded) -> Iterator[Sample]:
    """The samples of one encoded chunk, in order (views into its flat array)."""
    flat, lengths, prompt_lens = encoded
    ends = np.cumsum(lengths)
    for start, end, prompt in zip((ends - lengths).tolist(), ends.tolist(), prompt_lens.tolist()):
        yield flat[start:end], prompt


def _init_worker(tokenizer_dir: str) -> None:
    global _worker_tokenizer
    _worker_tokenizer = Tokenizer(tokenizer_dir)


def _work(task: Tuple[str, Sequence[Tuple[str, str, str]]]) -> Encoded:
    assert _worker_tokenizer is not None
    kind, rows = task
    return encode_chunk(_worker_tokenizer, kind, [Record(*row) for row in rows])


class Encoder:
    """Encodes records in order with ``workers`` processes (1 = in-process).

    The worker pool starts when the encoder is entered, so workers fork before the caller imports
    anything heavy (mindspore for writing) and tokenise while the main process packs and writes.
    """

    def __init__(self, tokenizer_dir: str, kind: str, workers: int = 1):
        self.tokenizer = Tokenizer(tokenizer_dir)  # fails here, not in a worker, on a bad directory
        self.tokenizer_dir, self.kind, self.workers = str(tokenizer_dir), kind, workers
        self._pool = None

    def __enter__(self) -> Encoder:
        if self.workers > 1:
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            ctx = mp.get_context(method)
            self._pool = ctx.Pool(self.workers, initializer=_init_worker, initargs=(self.tokenizer_dir,))
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()

    def encode(self, records: Sequence[Record]) -> Iterator[Sample]:
        """Yield the samples of ``records`` in input order."""
        chunks = [records[i : i + CHUNK] for i in range(0, len(records), CHUNK)]
        if self._pool is None:
            results: Iterator[Encoded] = (encode_chunk(self.tokenizer, self.kind, c) for c in chunks)
        else:  # plain tuples pickle several times faster than the dataclass
            tasks = [(self.kind, [(r.instruction, r.input, r.output) for r in c]) for c in chunks]
            results = self._pool.imap(_work, tasks)
        for encoded in results:
            yield from samples_of(encoded)


def sample_lists(encoded: Encoded) -> List[Tuple[List[int], List[int]]]:
    """(ids, loss_mask) as plain lists, for tests and inspection."""
    return [(ids.tolist(), [0] * p + [1] * (len(ids) - p)) for ids, p in samples_of(encoded)]
