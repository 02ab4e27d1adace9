"""Encoding samples and packing them into rows of seq_length + 1 (pure Python, no mindspore)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from iflytekspark.data.encoding import Encoder, encode_chunk, sample_lists
from iflytekspark.data.packing import PackStats, pack_pretrain, pack_sft
from iflytekspark.data.records import Record, load_records
from iflytekspark.tokenizer import Tokenizer


def sample(n, start=1, prompt=0):
    return np.arange(start, start + n, dtype=np.int32), prompt


def lists(rows):
    return [(ids.tolist(), mask.tolist()) for ids, mask in rows]


def test_pretrain_exact_multiple_gives_full_rows_without_padding():
    stats = PackStats()
    rows = lists(pack_pretrain([sample(3), sample(5, 10)], row_len=4, pad_id=0, stats=stats))
    assert [r for r, _ in rows] == [[1, 2, 3, 10], [11, 12, 13, 14]]
    assert (stats.rows, stats.tokens, stats.padding, stats.samples) == (2, 8, 0, 2)


def test_pretrain_tail_is_padded_with_pad_id():
    stats = PackStats()
    rows = lists(pack_pretrain([sample(6)], row_len=4, pad_id=9, stats=stats))
    assert [r for r, _ in rows] == [[1, 2, 3, 4], [5, 6, 9, 9]]
    assert (stats.rows, stats.padding) == (2, 2)


def test_sft_greedy_packing_writes_every_row_with_mask():
    stats = PackStats()
    samples = [sample(3, 1, prompt=1), sample(2, 10, prompt=1), sample(4, 20, prompt=2), sample(1, 30)]
    rows = lists(pack_sft(samples, row_len=5, pad_id=0, overlong="truncate", stats=stats))
    assert rows == [
        ([1, 2, 3, 10, 11], [0, 1, 1, 0, 1]),
        ([20, 21, 22, 23, 30], [0, 0, 1, 1, 1]),
    ]
    rows = lists(pack_sft(samples[:3], row_len=5, pad_id=7, overlong="truncate", stats=PackStats()))
    assert rows[-1] == ([20, 21, 22, 23, 7], [0, 0, 1, 1, 0])  # the last, partial row is written


@pytest.mark.parametrize("overlong, rows, truncated, rejected", [("truncate", 3, 1, 0), ("reject", 2, 0, 1)])
def test_sft_overlong_samples_are_truncated_or_rejected_and_counted(overlong, rows, truncated, rejected):
    stats = PackStats()
    samples = [sample(2), sample(9, 10, prompt=3), sample(3, 30)]
    out = lists(pack_sft(samples, row_len=4, pad_id=0, overlong=overlong, stats=stats))
    assert (len(out), stats.truncated, stats.rejected) == (rows, truncated, rejected)
    assert all(len(ids) == len(mask) == 4 for ids, mask in out)
    if overlong == "truncate":
        assert out[1] == ([10, 11, 12, 13], [0, 0, 0, 1])
        assert stats.dropped_tokens == 5
    else:
        assert stats.dropped_tokens == 9


def test_sft_sample_is_prompt_with_mask_0_then_response_with_mask_1(tiny_tokenizer):
    tok = Tokenizer(tiny_tokenizer)
    [(ids, mask)] = sample_lists(encode_chunk(tok, "sft", [Record("Say hi", " now", "Hi<ret>there")]))
    cut = mask.index(1)
    assert set(mask[:cut]) == {0} and set(mask[cut:]) == {1}
    assert tok.decode(ids[:cut]) == "<User> Say hi now<end><Bot> "
    assert tok.decode(ids[cut:]).strip() == "Hi\nthere<end>"
    assert ids[cut - 1] != 5 and ids[-1] == tok.eos_id
    [(pre, _)] = sample_lists(encode_chunk(tok, "pretrain", [Record("Say hi", "", "Hi")]))
    assert pre[-1] == tok.eos_id and tok.decode(pre).strip() == "Hi<end>"


@pytest.mark.parametrize(
    "instruction, text, prompt",
    [
        ("Translate to French: ", "good morning", "<User> Translate to French: good morning<end><Bot> "),
        ("Summarize:\n", "the river is long", "<User> Summarize:<ret>the river is long<end><Bot> "),
        ("  Say\t", "hi \n", "<User> Say    hi<end><Bot> "),  # the ends of the joined text are stripped
    ],
)
def test_sft_prompt_strips_the_joined_instruction_and_input_once(
    tmp_path, tiny_tokenizer, instruction, text, prompt
):
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps([{"instruction": instruction, "input": text, "output": " Bonjour\n"}]))
    tok = Tokenizer(tiny_tokenizer)
    records = load_records(raw, ("instruction", "output"))
    [(ids, mask)] = sample_lists(encode_chunk(tok, "sft", records))
    cut = mask.index(1)
    assert tok.decode(ids[:cut], keep_ret=True) == prompt
    assert ids[:cut] == tok.encode(prompt)
    assert tok.decode(ids[cut:], keep_ret=True) == "Bonjour<end>"  # the output is stripped on its own
    with Encoder(tiny_tokenizer, "sft", workers=2) as enc:  # the workers' path gives the same ids
        assert [i.tolist() for i, _ in enc.encode(records)] == [ids]


def test_parallel_encoding_equals_serial_and_keeps_order(tiny_tokenizer, tiny_corpus, monkeypatch):
    monkeypatch.setattr("iflytekspark.data.encoding.CHUNK", 7)
    records = load_records(tiny_corpus, ("instruction", "output"))
    with Encoder(tiny_tokenizer, "sft", workers=1) as enc:
        serial = [(ids.tolist(), p) for ids, p in enc.encode(records)]
    with Encoder(tiny_tokenizer, "sft", workers=2) as enc:
        parallel = [(ids.tolist(), p) for ids, p in enc.encode(records)]
    assert len(serial) == len(records) and parallel == serial
