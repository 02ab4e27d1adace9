"""The train-one-step cell: loss scaling, gradient clipping, overflow skip; safe on CPU (docs/model.md §10).

MindFormers' MFTrainOneStepCell checks overflow with NPU-only operators, and MindSpore's TrainOneStepCell
rejects the keyword arguments the 1.7.0 Trainer passes. This cell accepts those keywords, runs the
Ascend overflow check only on Ascend and a portable all-finite check elsewhere, and returns what
MindFormers' loss monitor prints: (loss, overflow, loss_scale, learning_rate, global_norm).

YAML (``runner_wrapper``): ``type: SparkTrainOneStepCell``, ``scale_sense`` a number (fixed) or a
``DynamicLossScaleUpdateCell`` (fp16: loss_scale_value 4294967296, scale_factor 2, scale_window 1000),
``use_clip_grad`` (default True), ``max_grad_norm`` (default 1.0).
"""

from __future__ import annotations

from mindformers.core.clip_grad import ClipGradNorm
from mindformers.tools.register import MindFormerModuleType, MindFormerRegister
from mindspore import Tensor, context, nn, ops
from mindspore import dtype as mstype

_unscale = ops.MultitypeFuncGraph("spark_unscale")
_all_finite = ops.MultitypeFuncGraph("spark_all_finite")


@_unscale.register("Tensor", "Tensor")
def _unscale_grad(scale, grad):
    return ops.cast(grad, mstype.float32) / scale


@_all_finite.register("Tensor")
def _grad_all_finite(grad):
    return ops.cast(ops.isfinite(grad).all(), mstype.float32)


@MindFormerRegister.register(MindFormerModuleType.WRAPPER)
class SparkTrainOneStepCell(nn.TrainOneStepWithLossScaleCell):
    """One training step of a network that returns its scalar loss (see the module docstring)."""

    def __init__(
        self,
        network,
        optimizer,
        scale_sense=1.0,
        use_clip_grad: bool = True,
        max_grad_norm: float = 1.0,
        calculate_per_token_loss: bool = False,
        **kwargs,
    ):
        # kwargs: what the Trainer passes for its own cells (parallel_config, print_separate_loss,
        # global_norm_spike_threshold, use_skip_data_by_global_norm); they do not apply here.
        if calculate_per_token_loss:
            raise ValueError(
                "SparkTrainOneStepCell: calculate_per_token_loss is not supported (the model returns its "
                "masked-mean loss); set calculate_per_token_loss: False in the YAML"
            )
        if isinstance(scale_sense, (int, float)):
            scale_sense = Tensor(float(scale_sense), mstype.float32)
        super().__init__(network, optimizer, scale_sense)
        self.use_clip_grad = use_clip_grad
        self.clip = ClipGradNorm(max_norm=max_grad_norm)
        self.on_ascend = context.get_context("device_target") == "Ascend"
        self.zero = Tensor(0.0, mstype.float32)

    def get_overflow_status(self, status, compute_output):
        """Ascend: the NPU status check of MindSpore. Elsewhere: any non-finite gradient."""
        if self.on_ascend:
            return super().get_overflow_status(status, compute_output)
        finite = self.hyper_map(_all_finite, compute_output)
        return ops.AddN()(finite) < len(compute_output)

    def construct(self, *inputs):
        loss = self.network(*inputs)
        scaling_sens = self.scale_sense
        status, scaling_sens = self.start_overflow_check(loss, scaling_sens)
        sens = ops.ones_like(loss) * ops.cast(scaling_sens, ops.dtype(loss))
        grads = self.grad(self.network, self.weights)(*inputs, sens)
        grads = self.hyper_map(ops.partial(_unscale, scaling_sens), grads)
        grads = self.grad_reducer(grads)
        overflow = self.process_loss_scale(self.get_overflow_status(status, grads))
        global_norm = self.zero
        if self.use_clip_grad:
            grads, global_norm = self.clip(grads)
        learning_rate = self.optimizer.get_lr()
        if self.optimizer.is_group_lr:
            learning_rate = learning_rate[-1]
        if not overflow:
            loss = ops.depend(loss, self.optimizer(grads))
        return loss, overflow, scaling_sens, learning_rate, global_norm
