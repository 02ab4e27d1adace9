"""Training progress and eval results read from a rank's log (stdlib, Python 3.9+; node side).

``parse_progress``/``parse_eval`` read a whole text; ``LogFollower`` reads only the bytes a log gained
since its last call (keeping a bounded tail) and says when the progress or the result changed: the
node-side supervisor journals those changes as they happen.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any, Dict, Optional, Tuple

Json = Dict[str, Any]
TAIL_BYTES = 64 * 1024  # enough for the last loss-monitor line and its progress bar


# ---------------------------------------------------------------- MindFormers log progress

# MFLossMonitor.print_output_info: "{ Epoch:[%3d/%3d], step:[%5d/%5d], loss: %5.6f, " (sink) or
# "loss:[%5.6f/%5.6f], " (no sink), optional "lm_loss: ..., ", then "per_step_time: %dms, [lr: %s, ]
# overflow cond: %s, loss_scale: %s, global_norm: %s[, train_throughput_per_npu: %.3fT]" and a second
# line "  %4.1f%% |bar| %.5f samples/s/p  <timedelta> }".
_STEP_RE = re.compile(r"Epoch:\[\s*(\d+)/\s*(\d+)\], step:\[\s*(\d+)/\s*(\d+)\], loss:\s*\[?\s*([^,/\]\s]+)")
_KEYS = "per_step_time|lr|overflow cond|loss_scale|global_norm|train_throughput_per_npu"
_FIELD_RE = re.compile(rf"({_KEYS}): (\[[^\]]*\]|[^,]*)")
_BAR_RE = re.compile(
    r"(\d+(?:\.\d+)?)% \|[^|]*\| ([\d.]+) samples/s/p\s+(?:(\d+) days?, )?(\d+):(\d\d):(\d\d)"
)


def _number(text: Optional[str]) -> Optional[float]:
    try:
        return float((text or "").strip().strip("[]").rstrip("msT"))
    except ValueError:
        return None


def parse_progress(text: str, seq_length: Optional[int] = None) -> Optional[Json]:
    """The last training progress printed by MindFormers' MFLossMonitor in ``text`` (None if none)."""
    steps = list(_STEP_RE.finditer(text))
    if not steps:
        return None
    m = steps[-1]
    epoch, epochs, step, per_epoch = (int(g) for g in m.groups()[:4])
    line_end = text.find("\n", m.end())
    f = dict(_FIELD_RE.findall(text[m.end() : None if line_end < 0 else line_end]))
    out: Json = {
        "epoch": epoch, "epochs": epochs, "step": step, "steps_per_epoch": per_epoch,
        "global_step": (epoch - 1) * per_epoch + step, "total_steps": epochs * per_epoch,
        "loss": _number(m.group(5)), "per_step_ms": _number(f.get("per_step_time")), "lr": f.get("lr"),
        "overflow": f.get("overflow cond"), "loss_scale": f.get("loss_scale"), "global_norm": f.get("global_norm"),
        "tflops_per_npu": _number(f.get("train_throughput_per_npu")),
        "percent": None, "samples_per_s": None, "tokens_per_s": None, "eta_s": None,
    }  # fmt: skip
    bar = _BAR_RE.search(text, m.end())
    if bar:
        days, h, mi, s = (int(g or 0) for g in bar.groups()[2:])
        out.update(percent=float(bar.group(1)), samples_per_s=float(bar.group(2)))
        out["eta_s"] = days * 86400 + h * 3600 + mi * 60 + s
        out["tokens_per_s"] = round(out["samples_per_s"] * seq_length, 3) if seq_length else None
    elif out["per_step_ms"] is not None:
        out["eta_s"] = int((out["total_steps"] - out["global_step"]) * out["per_step_ms"] / 1000)
    return out


# The model package's run_mode eval (iflytekspark.tasks.evaluate): its one result line.
_EVAL_RE = re.compile(r"^eval: loss ([-+\w.]+), perplexity ([-+\w.]+), rows (\d+), tokens (\d+)\s*$", re.M)


def parse_eval(text: str) -> Optional[Json]:
    """The last ``eval: loss L, perplexity P, rows R, tokens T`` line in ``text`` (None if none)."""
    found = list(_EVAL_RE.finditer(text))
    if not found:
        return None
    m = found[-1]
    loss, ppl = _number(m.group(1)), _number(m.group(2))
    if loss is None or ppl is None:
        return None
    return {"loss": loss, "perplexity": ppl, "rows": int(m.group(3)), "tokens": int(m.group(4))}


class LogFollower:
    """One rank log read incrementally: ``poll`` answers (progress, result) when either changed."""

    def __init__(self, path: str, seq_length: Optional[int] = None):
        self.path, self.seq_length = path, seq_length
        self.offset, self.tail = 0, ""
        self.progress: Optional[Json] = None
        self.result: Optional[Json] = None

    def _new_text(self) -> str:
        with contextlib.suppress(OSError), open(self.path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size < self.offset:  # the log was replaced: read it again from its start
                self.offset, self.tail = 0, ""
            if size == self.offset:
                return ""
            f.seek(max(self.offset, size - TAIL_BYTES))
            data = f.read(size - f.tell())
            self.offset = size
            return data.decode("utf-8", "replace")
        return ""

    def poll(self) -> Tuple[Optional[Json], Optional[Json]]:
        """The (progress, result) that changed since the last call; None for what did not."""
        text = self._new_text()
        if not text:
            return None, None
        self.tail = (self.tail + text)[-TAIL_BYTES:]
        progress, result = parse_progress(self.tail, self.seq_length), parse_eval(self.tail)
        changed = (progress if progress is not None and progress != self.progress else None,
                   result if result is not None and result != self.result else None)  # fmt: skip
        self.progress, self.result = progress or self.progress, result or self.result
        return changed
