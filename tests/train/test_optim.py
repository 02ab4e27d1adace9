"""AdamW against a NumPy step, the LR schedule's values, and the train-one-step cell (clip, scale, skip)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from iflytekspark.train.schedule import warmup_cosine

pytestmark = pytest.mark.mindspore


def numpy_adamw(p, g, m, v, t, lr, wd, b1=0.9, b2=0.95, eps=1e-8):
    """The reference update (docs/model.md §4) in float32; returns new (p, m, v) with p in its own dtype."""
    g = g.astype(np.float32)
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    step = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
    new = p.astype(np.float32) * (1 - lr * wd) - step * m / (np.sqrt(v) + eps)
    return new.astype(p.dtype), m, v


def test_warmup_cosine_values():
    f = lambda s: warmup_cosine(s, 3e-4, 3e-5, warmup_steps=4, total_steps=14)  # noqa: E731
    assert [f(s) for s in range(5)] == pytest.approx([0, 7.5e-5, 1.5e-4, 2.25e-4, 3e-4])
    assert f(9) == pytest.approx(3e-5 + (3e-4 - 3e-5) * 0.5)  # half way through the cosine
    assert f(14) == pytest.approx(3e-5) and f(100) == pytest.approx(3e-5)
    assert warmup_cosine(0, 3e-5, 3e-6, 0, 10) == pytest.approx(3e-5)  # SFT: no warm-up


def test_lr_cell_matches_the_formula(ms_context):
    from iflytekspark.train.lr import WarmUpCosineLR

    cell = WarmUpCosineLR(3e-4, lr_end=3e-5, warmup_steps=4, total_steps=14)
    got = [
        float(cell(ms_context.Tensor(np.array([s], np.int32))).asnumpy().reshape(-1)[0]) for s in range(16)
    ]
    assert got == pytest.approx([warmup_cosine(s, 3e-4, 3e-5, 4, 14) for s in range(16)], rel=1e-5)


@pytest.mark.parametrize("mode", ["pynative", "graph"])
def test_adamw_step_equals_numpy(ms_context, mode, request):
    from iflytekspark.train.lr import WarmUpCosineLR
    from iflytekspark.train.optimizer import SparkAdamW
    from mindspore import Parameter, Tensor

    if mode == "graph":
        request.getfixturevalue("graph_mode")
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(5).astype(np.float16)]
    w, b = Parameter(Tensor(params[0]), name="w"), Parameter(Tensor(params[1]), name="b")
    lr = WarmUpCosineLR(1e-2, lr_end=1e-3, warmup_steps=1, total_steps=5)
    opt = SparkAdamW([{"params": [w], "weight_decay": 0.1}, {"params": [b]}], learning_rate=lr)
    assert [p.name for p in opt.exp_avg] == ["adam_m.w", "adam_m.b"] and str(
        opt.exp_avg_sq[1].dtype
    ) == "Float32"
    state = [
        (params[0], np.zeros((3, 4), np.float32), np.zeros((3, 4), np.float32)),
        (params[1], np.zeros(5, np.float32), np.zeros(5, np.float32)),
    ]
    for t in (1, 2, 3):
        grads = [rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(5).astype(np.float16)]
        opt((Tensor(grads[0]), Tensor(grads[1])))
        rate = warmup_cosine(t - 1, 1e-2, 1e-3, 1, 5)
        state = [numpy_adamw(p, g, m, v, t, rate, wd) for (p, m, v), g, wd in zip(state, grads, (0.1, 0.0))]
        np.testing.assert_allclose(w.asnumpy(), state[0][0], rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(b.asnumpy(), state[1][0])  # fp16 parameter: computed in fp32, cast back
        assert b.dtype == ms_context.float16


def make_step(ms_context, scale_sense=1.0, **kwargs):
    """A one-weight regression trained with SGD(lr=1), so the applied gradient is param_before - after."""
    from iflytekspark.train.wrapper import SparkTrainOneStepCell
    from mindspore import Parameter, Tensor, nn, ops

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = Parameter(Tensor(np.array([3.0, 4.0], np.float32)), name="w")

        def construct(self, x, y):
            return ops.reduce_sum((self.w * x - y) ** 2)

    net = Net()
    opt = nn.SGD(net.trainable_params(), learning_rate=1.0)
    return net, SparkTrainOneStepCell(net, opt, scale_sense=scale_sense, **kwargs)


def test_step_accepts_the_trainer_keywords_and_clips_to_norm_one(ms_context):
    from mindspore import Tensor

    trainer_kwargs = {
        "parallel_config": None,
        "print_separate_loss": False,
        "global_norm_spike_threshold": 1.0,
        "use_skip_data_by_global_norm": False,
        "calculate_per_token_loss": False,
    }
    net, step = make_step(ms_context, **trainer_kwargs)
    x, y = Tensor(np.array([1.0, 1.0], np.float32)), Tensor(np.array([0.0, 0.0], np.float32))
    loss, overflow, scale, lr, norm = step(x, y)
    grad = np.array([6.0, 8.0])  # d/dw (w - 0)^2 = 2w; norm 10
    assert float(loss.asnumpy()) == pytest.approx(25.0) and not bool(overflow.asnumpy())
    assert float(norm.asnumpy().reshape(-1)[0]) == pytest.approx(10.0) and float(scale.asnumpy()) == 1.0
    np.testing.assert_allclose(net.w.asnumpy(), np.array([3.0, 4.0]) - grad / 10.0, rtol=1e-6)
    with pytest.raises(ValueError, match="calculate_per_token_loss"):
        make_step(ms_context, calculate_per_token_loss=True)


def test_fixed_loss_scale_is_divided_out(ms_context):
    from mindspore import Tensor

    net, step = make_step(ms_context, scale_sense=1024, use_clip_grad=False)
    step(Tensor(np.array([0.5, 0.5], np.float32)), Tensor(np.array([1.0, 1.0], np.float32)))
    grad = 2 * (np.array([3.0, 4.0]) * 0.5 - 1.0) * 0.5  # unscaled gradient
    np.testing.assert_allclose(net.w.asnumpy(), np.array([3.0, 4.0]) - grad, rtol=1e-6)


def test_overflow_skips_the_update_and_dynamic_scale_backs_off(ms_context):
    from mindspore import Tensor
    from mindspore.nn import DynamicLossScaleUpdateCell

    cell = DynamicLossScaleUpdateCell(loss_scale_value=2.0**32, scale_factor=2, scale_window=1000)
    net, step = make_step(ms_context, scale_sense=cell)
    x = Tensor(np.array([np.inf, 1.0], np.float32))
    _, overflow, scale, _, _ = step(x, Tensor(np.array([0.0, 0.0], np.float32)))
    assert bool(overflow.asnumpy())
    np.testing.assert_array_equal(net.w.asnumpy(), np.array([3.0, 4.0], np.float32))  # no update
    assert float(step.scale_sense.asnumpy()) == 2.0**31


def test_yaml_runner_wrapper_builds_with_dynamic_loss_scale(ms_context):
    from mindformers.wrapper import build_wrapper
    from mindspore import nn

    net, _ = make_step(ms_context)

    config = {
        "type": "SparkTrainOneStepCell",
        "use_clip_grad": True,
        "scale_sense": {
            "type": "DynamicLossScaleUpdateCell",
            "loss_scale_value": 4294967296,
            "scale_factor": 2,
            "scale_window": 1000,
        },
    }
    trainer_args = {
        "network": net,
        "optimizer": nn.SGD(net.trainable_params()),
        "parallel_config": None,
        "calculate_per_token_loss": False,
        "global_norm_spike_threshold": 1.0,
        "print_separate_loss": False,
        "use_skip_data_by_global_norm": False,
    }
    cell = build_wrapper(config, default_args=trainer_args)
    assert type(cell).__name__ == "SparkTrainOneStepCell"
    assert float(cell.scale_sense.asnumpy()) == 2.0**32 and cell.loss_scaling_manager is not None
