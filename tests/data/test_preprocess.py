"""End to end: the CLI writes MindRecord files that MindSpore's MindDataset reads back as expected."""

from __future__ import annotations

import numpy as np
import pytest
from iflytekspark.data.encoding import encode_chunk, sample_lists
from iflytekspark.data.records import load_records
from iflytekspark.tokenizer import Tokenizer

from tests.fixtures.train import SEQ_LENGTH, run_preprocess

pytestmark = pytest.mark.mindspore


def read_back(path, columns):
    import mindspore.dataset as ds

    data = ds.MindDataset(str(path), columns_list=columns, shuffle=False)
    return [[np.asarray(row[c]) for c in columns] for row in data.create_dict_iterator(output_numpy=True)]


def expected_samples(tokenizer, corpus, kind):
    required = ("output",) if kind == "pretrain" else ("instruction", "output")
    return sample_lists(encode_chunk(Tokenizer(tokenizer), kind, load_records(corpus, required)))


def test_pretrain_rows_are_the_token_stream_cut_and_tail_padded(
    pretrain_mindrecord, tiny_tokenizer, tiny_corpus
):
    rows = [ids for (ids,) in read_back(pretrain_mindrecord, ["input_ids"])]
    stream = [i for ids, _ in expected_samples(tiny_tokenizer, tiny_corpus, "pretrain") for i in ids]
    assert all(r.dtype == np.int64 and r.shape == (SEQ_LENGTH + 1,) for r in rows)
    flat = np.concatenate(rows)
    assert len(rows) == -(-len(stream) // (SEQ_LENGTH + 1))
    assert flat[: len(stream)].tolist() == stream
    assert set(flat[len(stream) :].tolist()) <= {0}


def test_sft_rows_hold_every_sample_in_order_with_its_mask(sft_mindrecord, tiny_tokenizer, tiny_corpus):
    rows = read_back(sft_mindrecord, ["input_ids", "loss_mask"])
    samples = expected_samples(tiny_tokenizer, tiny_corpus, "sft")
    kept = [(i[: SEQ_LENGTH + 1], m[: SEQ_LENGTH + 1]) for i, m in samples]
    assert all(ids.shape == mask.shape == (SEQ_LENGTH + 1,) for ids, mask in rows)
    # Strip each row's padding (mask 0 and pad id at the end) and compare with the concatenated samples.
    got_ids = [int(x) for ids, _ in rows for x in ids]
    got_mask = [int(x) for _, mask in rows for x in mask]
    want_ids, want_mask, pos = [], [], 0
    for ids, mask in kept:
        if (pos % (SEQ_LENGTH + 1)) + len(ids) > SEQ_LENGTH + 1:  # greedy: start a new row
            pad = SEQ_LENGTH + 1 - pos % (SEQ_LENGTH + 1)
            want_ids, want_mask, pos = want_ids + [0] * pad, want_mask + [0] * pad, pos + pad
        want_ids, want_mask, pos = want_ids + ids, want_mask + mask, pos + len(ids)
    pad = -pos % (SEQ_LENGTH + 1)
    assert got_ids == want_ids + [0] * pad
    assert got_mask == want_mask + [0] * pad
    assert sum(got_mask) > 0


def test_summary_reports_counts_and_rates(tmp_path, tiny_tokenizer, tiny_corpus):
    out = tmp_path / "sft.mindrecord"
    lengths = sorted(len(ids) for ids, _ in expected_samples(tiny_tokenizer, tiny_corpus, "sft"))
    seq_length = lengths[len(lengths) // 2] - 1  # rows of the median length: about half are too long
    proc = run_preprocess(
        "sft", tiny_tokenizer, tiny_corpus, out, "--seq_length", str(seq_length), "--overlong", "reject"
    )
    assert proc.returncode == 0, proc.stderr
    assert "samples 96  rows" in proc.stdout
    rejected = int(proc.stdout.split("rejected ")[1].split()[0])
    assert 0 < rejected == sum(n > seq_length + 1 for n in lengths) < 96
    assert "rows/s" in proc.stdout and "tokens/s" in proc.stdout
    assert len(read_back(out, ["input_ids"])) == int(proc.stdout.split("rows ")[1].split()[0])
