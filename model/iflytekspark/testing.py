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
from typing import Dict, List, Union

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
    path.write_text(json.dumps(make_corpus(n, seed, max_words), ensure_ascii=False, indent=1), encoding="utf-8")
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
