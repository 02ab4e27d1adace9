"""An independent NumPy (float64) implementation of the iFlytekSpark math, written from the spec
(docs/model.md §2, §4), not from the MindSpore code. Weights are a dict keyed by
the checkpoint names of docs/model.md §3; linear weights are [out, in].
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

Weights = Dict[str, np.ndarray]


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def linear(w: Weights, name: str, x: np.ndarray) -> np.ndarray:
    return x @ w[name + ".weight"].T + w[name + ".bias"]


def rope(x: np.ndarray, theta: float) -> np.ndarray:
    """Rotate-half RoPE over the full head dim; x (B, nh, S, d), positions 0..S-1."""
    d, seq = x.shape[-1], x.shape[-2]
    inv_freq = theta ** (-np.arange(0, d, 2) / d)  # (d/2,)
    angles = np.arange(seq)[:, None] * inv_freq[None, :]
    angles = np.concatenate([angles, angles], -1)  # (S, d)
    rotated = np.concatenate([-x[..., d // 2 :], x[..., : d // 2]], -1)
    return x * np.cos(angles) + rotated * np.sin(angles)


def attention(w: Weights, p: str, x: np.ndarray, cfg: dict) -> np.ndarray:
    bsz, seq, hidden = x.shape
    nh = cfg["num_heads"]
    d = hidden // nh

    def heads(t):
        return t.reshape(bsz, seq, nh, d).transpose(0, 2, 1, 3)

    q = rope(heads(linear(w, p + "q_proj", x)), cfg["rope_theta"])
    k = rope(heads(linear(w, p + "k_proj", x)), cfg["rope_theta"])
    v = heads(linear(w, p + "v_proj", x))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    i, j = np.arange(seq)[:, None], np.arange(seq)[None, :]
    allowed = (j <= i) & (j >= i - (cfg["sparse_local_size"] - 1))
    scores = np.where(allowed, scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = (probs @ v).transpose(0, 2, 1, 3).reshape(bsz, seq, hidden)
    return linear(w, p + "out_proj", out)


def logits(w: Weights, cfg: dict, tokens: np.ndarray) -> np.ndarray:
    """tokens (B, S) -> logits (B, S, V), float64."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    eps = cfg["layernorm_epsilon"]
    table = w["transformer.embedding.word_embeddings.embedding_table"]
    x = table[tokens]
    for i in range(cfg["num_layers"]):
        p = f"transformer.transformer.layers.{i}."
        ln1 = layer_norm(x, w[p + "layer_norm.gamma"], w[p + "layer_norm.beta"], eps)
        h = x + attention(w, p + "attention.", ln1, cfg)
        ln2 = layer_norm(h, w[p + "final_layer_norm.gamma"], w[p + "final_layer_norm.beta"], eps)
        gated = gelu_tanh(linear(w, p + "mlp.fc0", ln2)) * linear(w, p + "mlp.fc1", ln2)
        x = h + linear(w, p + "mlp.fc2", gated)
    x = layer_norm(
        x, w["transformer.transformer.layernorm.gamma"], w["transformer.transformer.layernorm.beta"], eps
    )
    return x @ table.T


def masked_ce(lg: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> float:
    """sum(nll * m) / (sum(m) + 1e-5)."""
    shifted = lg - lg.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]
    return float((nll * mask).sum() / (mask.sum() + 1e-5))


def training_loss(
    w: Weights, cfg: dict, ids: np.ndarray, loss_mask: Optional[np.ndarray], alignment: str, pad_id: int = 0
) -> float:
    """Rows of S+1 ids; mask = loss_mask[:, 1:] ("labels") or loss_mask[:, :-1] ("reference");
    without loss_mask: labels != pad ("labels") or tokens != pad ("reference")."""
    tokens, labels = ids[:, :-1], ids[:, 1:]
    if loss_mask is None:
        mask = (labels if alignment == "labels" else tokens) != pad_id
    else:
        mask = loss_mask[:, 1:] if alignment == "labels" else loss_mask[:, :-1]
    return masked_ce(logits(w, cfg, tokens), labels, mask.astype(np.float64))
