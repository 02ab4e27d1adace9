"""Tiny, deterministic stand-ins for tests and the demo: a SentencePiece tokenizer and an alpaca corpus.

The released tokenizer (60000 pieces) cannot ship here, so :func:`build_tokenizer` trains a small one in
about a second with the same special pieces and the same ids for them: ``<pad>`` 0, ``<s>`` 1, ``</s>`` 2,
``<unk>`` 3, ``<ret>`` 4, ``<end>`` 5 (the model's eos), ``<User>`` 6, ``<Bot>`` 7, then 256 byte-fallback
pieces and the learned ones.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Dict, List, Optional, Union

from .tokenizer import BOT, END, PAD, RET, UNK, USER

# Fixed ids of the released model's special pieces that tests check against.
SPECIAL_IDS = {PAD: 0, "<s>": 1, "</s>": 2, UNK: 3, RET: 4, END: 5, USER: 6, BOT: 7}

_SYLLABLES = "ka ri to ne mu sa lo pe fi da go hu zi ba ve xu qi wo ja ce".split()
_HANZI = "天气很好我们学习模型数据训练星火大语言今明人工智能"
_TOPICS = ["weather", "river", "garden", "planet", "music", "number", "city", "forest"]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3)))


def _sentence(rng: random.Random, words: int) -> str:
    parts = [_word(rng) if rng.random() < 0.8 else rng.choice(_TOPICS) for _ in range(words)]
    if rng.random() < 0.3:
        parts.append("".join(rng.choice(_HANZI) for _ in range(rng.randint(2, 5))))
    return " ".join(parts).capitalize() + rng.choice([".", "!", "?", ",", " 42."])


def make_corpus(n: int = 64, seed: int = 0, max_words: int = 24) -> List[Dict[str, str]]:
    """``n`` alpaca-style records {instruction, input, output}; some hold newlines and tabs."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        output = _sentence(rng, rng.randint(3, max_words))
        if rng.random() < 0.3:
            output += "\n" + _sentence(rng, rng.randint(2, 8))
        if rng.random() < 0.1:
            output += "\tend"
        records.append(
            {
                "instruction": f"Tell me about the {rng.choice(_TOPICS)}.",
                "input": _sentence(rng, 3) if rng.random() < 0.3 else "",
                "output": output,
            }
        )
    return records


def write_corpus(path: Union[str, Path], n: int = 64, seed: int = 0, max_words: int = 24) -> Path:
    """Write :func:`make_corpus` as a JSON array (the preprocessing input format) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(make_corpus(n, seed, max_words), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return path


def build_tokenizer(folder: Union[str, Path], vocab_size: int = 400, seed: int = 0) -> Path:
    """Train a small SentencePiece model into ``folder`` (tokenizer.model + tokenizer.vocab); return it."""
    import sentencepiece as spm

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for rec in make_corpus(400, seed):  # the text as the tokenizer will see it
        lines += [rec["instruction"], rec["output"].replace("\n", RET).replace("\t", "    ")]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=str(folder / "tokenizer"),
        vocab_size=vocab_size,
        model_type="bpe",
        pad_id=0,
        bos_id=1,
        eos_id=2,
        unk_id=3,
        user_defined_symbols=[RET, END, USER, BOT],
        byte_fallback=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    return folder


def tiny_run_config(
    train_dataset: str = "",
    *,
    seq_length: int = 32,
    vocab_size: int = 400,
    num_layers: int = 2,
    hidden_size: int = 64,
    num_heads: int = 4,
    ffn_hidden_size: int = 128,
    sparse_local_size: int = 16,
    batch_size: int = 2,
    epochs: int = 1,
    learning_rate: float = 1e-3,
    warmup_steps: int = 2,
    save_checkpoint_steps: int = 4,
    columns: tuple = ("input_ids",),
    lora: bool = False,
    run_mode: str = "train",
) -> Dict:
    """A MindFormers run config (to dump as YAML) of a tiny iFlytekSpark on CPU, float32, graph mode."""
    dataset = {
        "data_loader": {"type": "MindDataset", "dataset_dir": train_dataset, "shuffle": False},
        "input_columns": list(columns),
        "num_parallel_workers": 1,
        "python_multiprocessing": False,
        "drop_remainder": True,
        "batch_size": batch_size,
        "repeat": 1,
        "numa_enable": False,
        "prefetch_size": 1,
    }
    model_config = {
        "type": "IFlytekSparkConfig",
        "batch_size": batch_size,
        "seq_length": seq_length,
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "ffn_hidden_size": ffn_hidden_size,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "sparse_local_size": sparse_local_size,
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 5,
        "compute_type": "float32",
        "layernorm_compute_type": "float32",
        "softmax_compute_type": "float32",
        "embedding_init_type": "float32",
    }
    if lora:
        model_config["pet_config"] = {
            "pet_type": "lora",
            "lora_rank": 3,
            "lora_alpha": 128,
            "lora_dropout": 0.0,
            "target_modules": "q_proj|v_proj|k_proj|out_proj|fc0|fc1|fc2",
        }
    return {
        "seed": 0,
        "output_dir": "./output",
        "load_checkpoint": "",
        "auto_trans_ckpt": False,
        "only_save_strategy": False,
        "resume_training": False,
        "use_parallel": False,
        "run_mode": run_mode,
        "print_separate_loss": False,
        "trainer": {"type": "CausalLanguageModelingTrainer", "model_name": "iflytekspark_tiny"},
        "runner_config": {"epochs": epochs, "batch_size": batch_size, "sink_mode": False, "sink_size": 1},
        "optimizer": {"type": "SparkAdamW", "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.0},
        "lr_schedule": {
            "type": "WarmUpCosineLR",
            "learning_rate": learning_rate,
            "lr_end": learning_rate / 10,
            "warmup_steps": warmup_steps,
            "total_steps": -1,
        },
        "train_dataset": dataset,
        "train_dataset_task": {"type": "CausalLanguageModelDataset", "dataset_config": dataset},
        "eval_dataset": {**dataset, "drop_remainder": False},
        "eval_dataset_task": {"type": "CausalLanguageModelDataset", "dataset_config": {**dataset}},
        "do_eval": False,
        "parallel_config": {
            "data_parallel": 1,
            "model_parallel": 1,
            "pipeline_stage": 1,
            "micro_batch_num": 1,
            "vocab_emb_dp": True,
            "gradient_aggregation_group": 4,
        },
        "micro_batch_interleave_num": 1,
        "callbacks": [
            {"type": "MFLossMonitor"},
            {
                "type": "CheckpointMonitor",
                "prefix": "iFlytekSpark_tiny",
                "save_checkpoint_steps": save_checkpoint_steps,
                "integrated_save": False,
                "async_save": False,
            },
        ],
        "context": {"mode": 0, "device_target": "CPU", "max_call_depth": 10000, "save_graphs": False},
        "parallel": {
            "parallel_mode": 0,
            "gradients_mean": False,
            "full_batch": False,
            "enable_parallel_optimizer": False,
        },
        "model": {"model_config": model_config, "arch": {"type": "IFlytekSparkForCausalLM"}},
        "runner_wrapper": {"type": "SparkTrainOneStepCell", "scale_sense": 1.0, "use_clip_grad": True},
        "metric": {"type": "PerplexityMetric"},
    }


def write_run_config(path: Union[str, Path], config: Dict) -> Path:
    """Dump a run config as YAML."""
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m iflytekspark.testing --tokenizer DIR --corpus FILE [--records N]`` (for demos)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m iflytekspark.testing", description=main.__doc__)
    p.add_argument("--tokenizer", help="folder to train the small test tokenizer into")
    p.add_argument("--corpus", help="JSON file to write the generated alpaca corpus to")
    p.add_argument("--records", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.tokenizer:
        print(f"tokenizer: {build_tokenizer(a.tokenizer, seed=a.seed)}")
    if a.corpus:
        print(f"corpus: {write_corpus(a.corpus, n=a.records, seed=a.seed)} ({a.records} records)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
