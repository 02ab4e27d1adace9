"""The checkpoint name/shape table (pure Python: no MindSpore, no model allocated)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from iflytekspark.checkpoint import expected_parameters, is_ignored_key, parameter_count
from iflytekspark.presets import SPARK_13B


def test_13b_table_has_723_tensors_and_13_3b_parameters():
    table = expected_parameters(SPARK_13B)
    assert len(table) == 723
    assert parameter_count(table) == 13_312_542_720


def test_13b_shapes_follow_spec():
    table = expected_parameters(SPARK_13B)
    assert table["transformer.embedding.word_embeddings.embedding_table"] == (60000, 5120)
    assert table["transformer.transformer.layers.39.attention.q_proj.weight"] == (5120, 5120)
    assert table["transformer.transformer.layers.0.mlp.fc0.weight"] == (14336, 5120)
    assert table["transformer.transformer.layers.0.mlp.fc1.bias"] == (14336,)
    assert table["transformer.transformer.layers.0.mlp.fc2.weight"] == (5120, 14336)
    assert table["transformer.transformer.layers.7.final_layer_norm.beta"] == (5120,)
    assert table["transformer.transformer.layernorm.gamma"] == (5120,)
    assert "transformer.transformer.layers.40.layer_norm.gamma" not in table


@pytest.mark.parametrize(
    "key",
    [
        "transformer.transformer.layers.3.attention.slice_sparse_mask",
        "transformer.transformer.layers.3.attention.key_past",
        "transformer.transformer.layers.3.attention.value_past",
        "adam_m.transformer.transformer.layers.0.mlp.fc0.weight",
        "adam_v.transformer.embedding.word_embeddings.embedding_table",
        "global_step",
        "scale_sense",
        "beta1_power",
    ],
)
def test_non_weights_are_ignored(key):
    assert is_ignored_key(key)


@pytest.mark.parametrize("key", expected_parameters({**SPARK_13B, "num_layers": 1}))
def test_weights_are_not_ignored(key):
    assert not is_ignored_key(key)


def test_package_and_pure_modules_do_not_import_mindspore():
    code = (
        "import sys, iflytekspark, iflytekspark.checkpoint, iflytekspark.presets, iflytekspark.generation_config\n"
        "iflytekspark.GenerationConfig(top_k=5)\n"
        "assert 'mindspore' not in sys.modules, 'mindspore was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
