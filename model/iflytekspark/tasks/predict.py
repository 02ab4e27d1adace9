"""run_mode predict: answer the questions of ``--predict_data`` with the KV-cache generator.

Flags (or the YAML's keys of the same name): --predict_data, --prompt (template, default
``<User> {}<end><Bot> ``; ``--prompt ""`` sends the raw question), --predict_length (prompt + answer,
default model seq_length), --predict_batch (default 1; the last batch may be smaller), --streamer,
--tokenizer_file (directory with *.model and *.vocab, or the *.model file; at most vocab_size pieces).
Sampling settings: ``generation_config`` or the model_config keys of docs/model.md §1; the draw is seeded with the
YAML's ``seed``; ids the tokenizer cannot decode (at or beyond its piece count) are never drawn.

Writes ``log/infer_result_num{N}_rank{R}.json`` (N = number of questions, R = rank; the reference's
name): one JSON line ``{"predict": answer, "prompt": prompt}`` per question, in order; and a readable
``log/infer_result_num{N}_rank{R}.log``. Inputs are checked before MindSpore starts.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, List, Optional, Tuple

from ..generation_config import GenerationConfig
from ..inference.prompts import DEFAULT_TEMPLATE, apply_template, check_lengths, read_questions
from ..tokenizer import Tokenizer
from .setup import RunConfigError, init_context

log = logging.getLogger("iflytekspark.run")


def _option(opts: Any, config: Any, name: str, default: Any = None) -> Any:
    value = getattr(opts, name, None)
    return value if value is not None else (config.get(name) if config.get(name) is not None else default)


def generation_settings(config: Any) -> GenerationConfig:
    """``generation_config`` section, else sampling keys on model_config (docs/model.md §1 defaults)."""
    section = config.get("generation_config") or config.model.model_config
    return GenerationConfig.from_mapping(dict(section))


def prepare(config: Any, opts: Any) -> Tuple[Tokenizer, List[str], List[List[int]], int]:
    """Tokenizer, prompts, their ids and the length limit; every input error before MindSpore starts."""
    folder = _option(opts, config, "tokenizer_file")
    if not folder:
        raise RunConfigError(
            "run_mode predict needs a tokenizer: set --tokenizer_file <directory or .model file>"
        )
    tokenizer = Tokenizer(folder)
    vocab = int(config.model.model_config.get("vocab_size") or tokenizer.vocab_size)
    if tokenizer.vocab_size > vocab:
        raise RunConfigError(
            f"tokenizer {tokenizer.model_file}: {tokenizer.vocab_size} pieces, more than the model's "
            f"vocab_size {vocab}: its ids would index past the embedding; use the model's tokenizer"
        )
    data = _option(opts, config, "predict_data")
    if data is None:
        raise RunConfigError("run_mode predict needs --predict_data '[q1##q2]' or a .json/.jsonl file")
    prompts = apply_template(read_questions(data), _option(opts, config, "prompt", DEFAULT_TEMPLATE))
    max_length = int(_option(opts, config, "predict_length", config.model.model_config.get("seq_length")))
    ids = tokenizer.encode_batch(prompts)
    check_lengths(ids, max_length)
    return tokenizer, prompts, ids, max_length


def _stream_sink(first: int, batch: int):
    """Print streamed text; with more than one row per batch each piece is tagged with its question."""

    def sink(row: int, text: str) -> None:
        sys.stdout.write(text if batch == 1 else f"[{first + row}] {text}\n")
        sys.stdout.flush()

    return sink


def run(config: Any, opts: Any) -> int:
    from ..inference.generate import generate
    from ..inference.runtime import build_model, rank_id
    from ..inference.steps import Steps
    from ..inference.streamer import TextStreamer

    tokenizer, prompts, ids, max_length = prepare(config, opts)
    batch = int(_option(opts, config, "predict_batch", 1))
    if batch < 1:
        raise RunConfigError(f"--predict_batch {batch}: must be >= 1")
    init_context(config)
    steps = Steps(build_model(config))
    settings = generation_settings(config)
    streamer_on = bool(_option(opts, config, "streamer", False))
    answers: List[str] = []
    started = time.time()
    for first in range(0, len(ids), batch):  # the last batch may be smaller: nothing is dropped
        chunk = ids[first : first + batch]
        streamer: Optional[TextStreamer] = None
        if streamer_on:
            streamer = TextStreamer(tokenizer, len(chunk), tokenizer.eos_id, _stream_sink(first, len(chunk)))
        out = generate(
            steps,
            chunk,
            settings,
            max_length,
            eos_id=tokenizer.eos_id,
            pad_id=tokenizer.pad_id,
            seed=int(config.get("seed") or 0) + first,
            on_step=streamer and streamer.put,
            vocab_limit=tokenizer.vocab_size,  # a smaller tokenizer cannot decode the ids above its own
        )
        if streamer is not None:
            streamer.end()
            sys.stdout.write("\n")
        answers += [tokenizer.decode(tokens) for tokens in out.tokens]
        log.info("predict: questions %d-%d of %d done", first, first + len(chunk) - 1, len(ids))
    write_results(prompts, answers, rank_id(config), time.time() - started)
    return 0


def write_results(prompts: List[str], answers: List[str], rank: int, seconds: float) -> Path:
    """log/infer_result_num{N}_rank{R}.json (one JSON line per question) and a readable .log beside it."""
    folder = Path("log")
    folder.mkdir(exist_ok=True)
    base = folder / f"infer_result_num{len(prompts)}_rank{rank}"
    with open(base.with_suffix(".json"), "w", encoding="utf-8") as f:
        for prompt, answer in zip(prompts, answers):
            f.write(json.dumps({"predict": answer, "prompt": prompt}, ensure_ascii=False) + "\n")
    with open(base.with_suffix(".log"), "w", encoding="utf-8") as f:
        f.write(f"{len(prompts)} question(s) answered in {seconds:.1f} s\n")
        for i, (prompt, answer) in enumerate(zip(prompts, answers)):
            f.write(f"\n=== question {i}\n--- prompt\n{prompt}\n--- answer\n{answer}\n")
    for i, answer in enumerate(answers):  # in the rank's log too, so `orchestrate logs` shows them
        print(f"predict: answer {i}: {json.dumps(answer, ensure_ascii=False)}")
    print(f"predict: {len(prompts)} answer(s) written to {base.with_suffix('.json')}")
    return base.with_suffix(".json")
