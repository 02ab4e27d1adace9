"""``python -m iflytekspark.convert`` on a tiny checkpoint: dtypes per key, dropped and kept keys."""

from __future__ import annotations

import numpy as np
import pytest
from iflytekspark.convert import main

pytestmark = pytest.mark.mindspore

KEYS = {
    "transformer.embedding.word_embeddings.embedding_table": (6, 4),
    "transformer.transformer.layers.0.layer_norm.gamma": (4,),
    "transformer.transformer.layers.0.attention.q_proj.weight": (4, 4),
    "transformer.transformer.layers.0.attention.slice_sparse_mask": (8, 8),
    "transformer.transformer.layers.0.attention.key_past": (1, 4),
    "adam_m.transformer.transformer.layers.0.attention.q_proj.weight": (4, 4),
    "global_step": (1,),
}


@pytest.fixture
def tiny_ckpt(tmp_path, ms_context):
    rng = np.random.default_rng(0)
    items = [
        {"name": k, "data": ms_context.Tensor(rng.standard_normal(s).astype(np.float32))}
        for k, s in KEYS.items()
    ]
    path = tmp_path / "src.ckpt"
    ms_context.save_checkpoint(items, str(path))
    return path


def dtypes(ms, path):
    return {k: str(v.dtype) for k, v in ms.load_checkpoint(str(path)).items()}


def test_default_bf16_keeps_embedding_and_norm_fp32_and_drops_non_weights(
    tmp_path, tiny_ckpt, ms_context, capsys
):
    out = tmp_path / "dst"
    out.mkdir()
    assert main(["--src_ckpt", str(tiny_ckpt), "--dst_ckpt", str(out)]) == 0
    got = dtypes(ms_context, out / "checkpoint.ckpt")
    assert got == {
        "transformer.embedding.word_embeddings.embedding_table": "Float32",
        "transformer.transformer.layers.0.layer_norm.gamma": "Float32",
        "transformer.transformer.layers.0.attention.q_proj.weight": "BFloat16",
    }
    summary = capsys.readouterr().out
    assert "1 bfloat16" in summary and "1 dropped mask" in summary and "2 dropped optimizer" in summary


def test_flags_cast_embedding_and_norm_and_keep_optimizer_state_uncast(tmp_path, tiny_ckpt, ms_context):
    out = tmp_path / "x.ckpt"
    argv = [
        "--src_ckpt",
        str(tiny_ckpt),
        "--dst_ckpt",
        str(out),
        "--dtype",
        "float16",
        "--embed_bf16",
        "--layernorm_bf16",
        "--keep-optimizer-state",
    ]
    assert main(argv) == 0
    got = dtypes(ms_context, out)
    assert got["transformer.embedding.word_embeddings.embedding_table"] == "Float16"
    assert got["transformer.transformer.layers.0.layer_norm.gamma"] == "Float16"
    assert got["adam_m.transformer.transformer.layers.0.attention.q_proj.weight"] == "Float32"
    assert "global_step" in got and not any("slice_sparse_mask" in k or "key_past" in k for k in got)
    src = ms_context.load_checkpoint(str(tiny_ckpt))[
        "transformer.transformer.layers.0.attention.q_proj.weight"
    ]
    dst = ms_context.load_checkpoint(str(out))["transformer.transformer.layers.0.attention.q_proj.weight"]
    np.testing.assert_array_equal(dst.asnumpy(), src.asnumpy().astype(np.float16))


def test_missing_source_is_a_clear_error(tmp_path, capsys):
    assert main(["--src_ckpt", str(tmp_path / "none.ckpt"), "--dst_ckpt", str(tmp_path / "o.ckpt")]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err
