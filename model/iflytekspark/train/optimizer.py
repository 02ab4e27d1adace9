"""The reference AdamW of iFlytekSpark (docs/model.md §4) as a MindSpore optimizer, registered for the YAML.

For each parameter p with gradient g, at step t = 1, 2, ... (all in float32, then cast back to p's dtype;
there is no float32 master copy):
  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
  p = p*(1 - lr*wd) - lr * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)
eps is added outside the bias correction. The state is named ``adam_m.<param>`` / ``adam_v.<param>`` as in
the released checkpoints. Registered as ``SparkAdamW`` and, so reference YAMLs load, ``AdamWeightDecayX``.
"""

from __future__ import annotations

import numpy as np
from mindformers.tools.register import MindFormerModuleType, MindFormerRegister
from mindspore import Parameter, ParameterTuple, Tensor, ops
from mindspore import dtype as mstype
from mindspore.common.initializer import initializer
from mindspore.nn.optim.optimizer import Optimizer

_adamw = ops.MultitypeFuncGraph("spark_adamw")


@_adamw.register(
    "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Bool"
)
def _update(beta1, beta2, eps, step, lr, weight_decay, param, grad, m, v, optim_filter):
    """One AdamW update of ``param`` (see the module docstring); returns the new value."""
    if not optim_filter:
        return param
    param32 = ops.cast(param, mstype.float32)
    grad32 = ops.cast(grad, mstype.float32)
    next_m = beta1 * m + (1.0 - beta1) * grad32
    next_v = beta2 * v + (1.0 - beta2) * ops.square(grad32)
    step_size = lr * ops.sqrt(1.0 - ops.pow(beta2, step)) / (1.0 - ops.pow(beta1, step))
    update = param32 * (1.0 - lr * weight_decay) - step_size * next_m / (ops.sqrt(next_v) + eps)
    new = ops.cast(update, ops.dtype(param))
    ops.assign(m, next_m)
    ops.assign(v, next_v)
    ops.assign(param, new)
    return new


def _float32_state(params, prefix: str) -> ParameterTuple:
    """Zero float32 state shaped like ``params``, named ``<prefix>.<name>``, sharded like them."""
    states = []
    for p in params:
        state = Parameter(initializer("zeros", p.shape, mstype.float32), name=f"{prefix}.{p.name}")
        state.param_info = p.param_info.clone()  # keeps the optimizer-shard layout of p
        state.name = f"{prefix}.{p.name}"
        cloned = getattr(p.param_info, "cloned_obj", None)
        if cloned is None:
            p.param_info.cloned_obj = [state]
        else:
            cloned.append(state)
        states.append(state)
    return ParameterTuple(states)


@MindFormerRegister.register(MindFormerModuleType.OPTIMIZER)
class SparkAdamW(Optimizer):
    """AdamW of the reference: betas (0.9, 0.95), eps 1e-8 outside bias correction, wd 0 by default."""

    def __init__(
        self,
        params,
        learning_rate=3e-4,
        beta1: float = 0.9,
        beta2: float = 0.95,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(learning_rate, params, weight_decay=weight_decay)
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0 and eps > 0.0):
            raise ValueError(
                f"SparkAdamW: need 0 <= beta1, beta2 < 1 and eps > 0, got {beta1}, {beta2}, {eps}"
            )
        self.beta1 = Tensor(np.array([beta1], np.float32))
        self.beta2 = Tensor(np.array([beta2], np.float32))
        self.eps = Tensor(np.array([eps], np.float32))
        self.exp_avg = _float32_state(self._parameters, "adam_m")
        self.exp_avg_sq = _float32_state(self._parameters, "adam_v")

    def construct(self, gradients):
        gradients = self.flatten_gradients(gradients)
        weight_decay = self.get_weight_decay()
        lr = self.get_lr()
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        step = ops.cast(self.global_step, mstype.float32)  # 1 at the first update
        # Graph mode wants every argument spelled out (no nested partials, no star-unpacking).
        b1, b2, eps, params, m, v, filt = (
            self.beta1,
            self.beta2,
            self.eps,
            self._parameters,
            self.exp_avg,
            self.exp_avg_sq,
            self.optim_filter,
        )
        if self.is_group_lr:
            result = self.hyper_map(
                ops.partial(_adamw, b1, b2, eps, step), lr, weight_decay, params, gradients, m, v, filt
            )
        elif self.is_group:
            result = self.hyper_map(
                ops.partial(_adamw, b1, b2, eps, step, lr), weight_decay, params, gradients, m, v, filt
            )
        else:
            result = self.hyper_map(
                ops.partial(_adamw, b1, b2, eps, step, lr, weight_decay), params, gradients, m, v, filt
            )
        if self.use_parallel:
            self.broadcast_params(result)
        return result


MindFormerRegister.register_cls(SparkAdamW, MindFormerModuleType.OPTIMIZER, alias="AdamWeightDecayX")
