"""Model presets: the 13B numbers of the spec, the tiny preset, a model_config YAML as the model."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError
from orchestrator.plan.model_presets import PRESETS, resolve_model, with_overrides


def test_13b_has_the_released_parameter_count():
    m = PRESETS["13b"]
    assert m.num_params == 13_312_542_720 and m.ffn_inner == 14336 and m.head_dim == 128


def test_overrides_replace_fields_and_keep_unknown_keys_apart():
    m = with_overrides(PRESETS["tiny"], {"num_layers": 3, "rope_theta": 10000.0})
    assert m.num_layers == 3 and m.extra == (("rope_theta", 10000.0),)
    assert m.model_config_fields()["rope_theta"] == 10000.0


def test_a_model_config_yaml_is_laid_over_13b(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(
        "model:\n  model_config:\n    type: IFlytekSparkConfig\n    num_layers: 4\n    hidden_size: 512\n"
    )
    m = resolve_model(str(path))
    assert (m.name, m.num_layers, m.hidden_size, m.vocab_size) == ("small", 4, 512, 60000)


def test_unknown_model_is_an_input_error():
    with pytest.raises(InputError, match="neither a preset nor a file"):
        resolve_model("70b")
