"""LoRA: mindpet names and shapes, only LoRA trains, LoRA-only save/load, merge equals unmerged."""

from __future__ import annotations

import numpy as np
import pytest
from iflytekspark.errors import CheckpointError

from tests.fixtures.model import TINY

pytestmark = pytest.mark.mindspore

TARGETS = [
    "attention.q_proj",
    "attention.k_proj",
    "attention.v_proj",
    "attention.out_proj",
    "mlp.fc0",
    "mlp.fc1",
    "mlp.fc2",
]


def _batch(ms, seed=0):
    rng = np.random.default_rng(seed)
    return ms.Tensor(rng.integers(1, TINY["vocab_size"], (2, TINY["seq_length"] + 1)).astype(np.int32))


@pytest.fixture(scope="module")
def trained(tiny_model, ms_context):
    """A tiny LoRA model after a few AdamW steps, with snapshots of all parameters before training."""
    from iflytekspark.lora import apply_lora, freeze_base
    from mindspore import nn

    model = tiny_model(seed=8)
    base_logits = _logits(model, _batch(ms_context, 1)[:, :-1])
    replaced = apply_lora(model)
    trainable = freeze_base(model)
    before = {p.name: p.asnumpy().copy() for p in model.get_parameters()}
    after_apply_logits = _logits(model, _batch(ms_context, 1)[:, :-1])
    net = nn.TrainOneStepCell(model, nn.AdamWeightDecay(model.trainable_params(), learning_rate=1e-3))
    net.set_train(True)
    losses = [float(net(_batch(ms_context)).asnumpy()) for _ in range(3)]
    model.set_train(False)
    return {
        "model": model,
        "replaced": replaced,
        "trainable": trainable,
        "before": before,
        "losses": losses,
        "base_logits": base_logits,
        "after_apply_logits": after_apply_logits,
    }


def _logits(model, tokens):
    model.set_train(False)
    return model(tokens).asnumpy()


def test_names_shapes_and_targets(trained):
    model = trained["model"]
    expected = [f"transformer.transformer.layers.{i}.{t}" for i in range(TINY["num_layers"]) for t in TARGETS]
    assert sorted(trained["replaced"]) == sorted(expected)
    shapes = {p.name: tuple(p.shape) for p in model.get_parameters()}
    hidden, inner = TINY["hidden_size"], TINY["ffn_hidden_size"] // 2
    p = "transformer.transformer.layers.1."
    assert shapes[p + "attention.q_proj.mindpet_delta_lora_a"] == (3, hidden)
    assert shapes[p + "attention.q_proj.mindpet_delta_lora_b"] == (hidden, 3)
    assert shapes[p + "mlp.fc2.mindpet_delta_lora_a"] == (3, inner)
    assert shapes[p + "mlp.fc0.mindpet_delta_lora_b"] == (inner, 3)
    assert shapes[p + "mlp.fc0.weight"] == (inner, hidden)  # base names unchanged
    lora_names = {f"{c}.mindpet_delta_lora_{ab}" for c in expected for ab in "ab"}
    assert sorted(trained["trainable"]) == sorted(lora_names)


def test_lora_b_starts_at_zero_so_outputs_are_unchanged(trained):
    np.testing.assert_array_equal(trained["after_apply_logits"], trained["base_logits"])
    before = trained["before"]
    assert all(not v.any() for k, v in before.items() if k.endswith("lora_b"))
    assert all(v.any() for k, v in before.items() if k.endswith("lora_a"))


def test_training_changes_only_lora(trained):
    assert trained["losses"][-1] < trained["losses"][0]
    for param in trained["model"].get_parameters():
        old, new = trained["before"][param.name], param.asnumpy()
        if "mindpet_delta_lora" in param.name:
            assert not np.array_equal(old, new), param.name
        else:
            np.testing.assert_array_equal(old, new, err_msg=param.name)


def test_lora_weights_save_and_load_alone(trained, tiny_model, ms_context, tmp_path):
    from iflytekspark.lora import apply_lora, load_lora, save_lora

    path = str(tmp_path / "lora.ckpt")
    saved = save_lora(trained["model"], path)
    assert saved and all("mindpet_delta_lora" in n for n in saved)
    assert sorted(ms_context.load_checkpoint(path)) == sorted(saved)
    fresh = tiny_model(seed=8)
    apply_lora(fresh)
    load_lora(fresh, path)
    tokens = _batch(ms_context, 2)[:, :-1]
    np.testing.assert_array_equal(_logits(fresh, tokens), _logits(trained["model"], tokens))


def test_load_lora_names_missing_keys(trained, tiny_model, ms_context):
    from iflytekspark.lora import apply_lora, load_lora, lora_state

    state = {n: p.asnumpy() for n, p in lora_state(trained["model"]).items()}
    dropped = "transformer.transformer.layers.0.mlp.fc1.mindpet_delta_lora_b"
    del state[dropped]
    fresh = tiny_model(seed=8)
    apply_lora(fresh)
    with pytest.raises(CheckpointError, match=dropped):
        load_lora(fresh, state)


def test_merged_checkpoint_loads_into_base_with_same_logits(trained, tiny_config, ms_context, tmp_path):
    from iflytekspark.checkpoint import load_weights
    from iflytekspark.lora import save_merged
    from iflytekspark.model import IFlytekSparkForCausalLM

    path = str(tmp_path / "merged.ckpt")
    save_merged(trained["model"], path)
    base = IFlytekSparkForCausalLM(tiny_config())
    report = load_weights(base, path)  # strict: exactly the base keys
    assert not report.unexpected and not report.ignored
    tokens = _batch(ms_context, 3)[:, :-1]
    merged, unmerged = _logits(base, tokens), _logits(trained["model"], tokens)
    assert np.abs(unmerged - trained["base_logits"]).max() > 1e-3  # the LoRA did change the model
    np.testing.assert_allclose(merged, unmerged, rtol=1e-5, atol=1e-5)
