"""Architecture sizes of the released models, as plain data (no MindSpore needed)."""

from __future__ import annotations

# docs/model.md §1: iFlytekSpark-13B. The MLP's inner width is ffn_hidden_size / 2 (gated).
SPARK_13B = {
    "vocab_size": 60000,
    "hidden_size": 5120,
    "ffn_hidden_size": 28672,
    "num_layers": 40,
    "num_heads": 40,
    "seq_length": 32768,
    "sparse_local_size": 8192,
    "layernorm_epsilon": 1e-5,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 5,
}

PRESETS = {"13b": SPARK_13B}
