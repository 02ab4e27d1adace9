"""MindFormers builds the model from a YAML (with the reference's unused fields, and with LoRA)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from tests.fixtures.model import TINY

pytestmark = pytest.mark.mindspore

# Fields of the reference YAMLs that nothing reads (docs/model.md §1), plus sampling settings.
REFERENCE_EXTRAS = {
    "hidden_act": "fast_gelu",
    "eod_reset": False,
    "is_reward_model": False,
    "use_moe": False,
    "expert_num": 1,
    "enable_offload": False,
    "ignore_token_id": -100,
    "bias_dropout_fusion": True,
    "offset": 0,
    "bos_token_id": 1,
    "top_k": 3,
    "repetition_penalty_increase": 0.2,
}


def _yaml(tmp_path, pet_config=None):
    model_config = {"type": "IFlytekSparkConfig", **TINY, "compute_type": "float32", **REFERENCE_EXTRAS}
    if pet_config:
        model_config["pet_config"] = pet_config
    path = tmp_path / "model.yaml"
    path.write_text(
        yaml.safe_dump({"model": {"model_config": model_config, "arch": {"type": "IFlytekSparkForCausalLM"}}})
    )
    return str(path)


def _trainer_default_args():
    from mindformers.modules.transformer.transformer import TransformerOpParallelConfig

    return {
        "parallel_config": TransformerOpParallelConfig(),
        "batch_size": 1,
        "calculate_per_token_loss": False,
    }


def test_yaml_builds_through_the_registry_and_runs(ms_context, tmp_path):
    import iflytekspark
    from iflytekspark.model import IFlytekSparkForCausalLM
    from mindformers.models.build_model import build_network
    from mindformers.tools.register import MindFormerConfig

    iflytekspark.register()
    config = MindFormerConfig(_yaml(tmp_path))
    network = build_network(config.model, default_args=_trainer_default_args())
    assert isinstance(network, IFlytekSparkForCausalLM)
    assert network.config.hidden_act == "fast_gelu"  # stored, not acted on
    gen = network.config.generation_config()
    assert (gen.top_k, gen.repetition_penalty_increase, gen.do_sample) == (3, 0.2, False)
    ids = ms_context.Tensor(np.arange(2 * 13, dtype=np.int32).reshape(2, 13) % TINY["vocab_size"])
    network.set_train(True)
    loss = float(network(ids).asnumpy())
    assert np.isfinite(loss) and loss > 0
    network.set_train(False)
    assert network(ids[:, :-1]).shape == (2, 12, TINY["vocab_size"])


def test_yaml_pet_config_gives_the_same_lora_as_apply_lora(ms_context, tmp_path, monkeypatch, tiny_config):
    from iflytekspark.lora import LORA_TARGETS, apply_lora
    from iflytekspark.model import IFlytekSparkForCausalLM
    from iflytekspark.registry import build_from_yaml_dict
    from mindformers.tools.register import MindFormerConfig

    monkeypatch.setenv("LOCAL_DEFAULT_PATH", str(tmp_path / "output"))  # PetModel writes adapter_config.json
    pet = {
        "pet_type": "lora",
        "lora_rank": 3,
        "lora_alpha": 128,
        "lora_dropout": 0.0,
        "target_modules": LORA_TARGETS,
    }
    section = MindFormerConfig(_yaml(tmp_path, pet)).model.to_dict()
    network = build_from_yaml_dict(section, **_trainer_default_args())
    ours = IFlytekSparkForCausalLM(tiny_config())
    apply_lora(ours)
    shapes = {p.name: tuple(p.shape) for p in network.get_parameters()}
    assert shapes == {p.name: tuple(p.shape) for p in ours.get_parameters()}
    assert {p.name for p in network.trainable_params()} == {n for n in shapes if "mindpet_delta_lora" in n}
    assert len(network.trainable_params()) == 2 * 7 * TINY["num_layers"]


def test_13b_preset_and_config_checks(ms_context):
    from iflytekspark.checkpoint import expected_parameters, parameter_count
    from iflytekspark.config import IFlytekSparkConfig
    from iflytekspark.errors import ConfigError

    config = IFlytekSparkConfig.preset("13b")
    assert (config.head_dim, config.mlp_inner_size, config.eos_token_id) == (128, 14336, 5)
    assert config.compute_type == ms_context.float16 and config.layernorm_compute_type == ms_context.float32
    assert parameter_count(expected_parameters(config)) == 13_312_542_720
    with pytest.raises(ConfigError, match="loss_mask_alignment"):
        IFlytekSparkConfig(**TINY, loss_mask_alignment="shifted")
    with pytest.raises(ConfigError, match="num_heads"):
        IFlytekSparkConfig(**{**TINY, "num_heads": 5})
