"""The generation loop through the real tiny model: stopping per row, length limits, penalty, errors."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.mindspore

PROMPTS = [[9, 10, 11], [12, 13, 14, 15, 16, 17, 18], [20]]


@pytest.fixture(scope="module")
def steps(make_steps):
    return make_steps(seed=1, sparse_local_size=4)


def test_each_row_stops_at_end_or_its_own_length_limit(steps):
    from iflytekspark.inference.generate import generate

    free = generate(steps, PROMPTS, max_length=14, eos_id=-1)
    assert [len(t) for t in free.tokens] == [11, 7, 13] and not any(free.ended)
    row0 = free.tokens[0]
    eos = next(t for i, t in enumerate(row0) if i >= 1 and t not in row0[:i])  # first new id after step 0
    stopped = generate(steps, PROMPTS, max_length=14, eos_id=eos)
    for r, tokens in enumerate(free.tokens):
        cut = tokens.index(eos) if eos in tokens else len(tokens)
        assert stopped.tokens[r] == tokens[:cut]  # greedy: the same path up to <end>
        assert stopped.ended[r] == (eos in tokens)
    assert stopped.ended[0] and len(stopped.tokens[0]) == row0.index(eos)


def test_repetition_penalty_counts_generated_tokens_only(steps):
    from iflytekspark.generation_config import GenerationConfig
    from iflytekspark.inference.generate import generate

    plain = generate(steps, PROMPTS, max_length=12, eos_id=-1)
    first = plain.tokens[0][0]
    prompt = [[first, *PROMPTS[0]]]  # the greedy choice is in the prompt: still chosen first
    assert generate(steps, prompt, max_length=12, eos_id=-1).tokens[0][0] == first
    strict = GenerationConfig(repetition_penalty=1e4, repetition_penalty_increase=1.0)
    penalised = generate(steps, prompt, strict, max_length=12, eos_id=-1, keep_logits=True)
    tokens = penalised.tokens[0]
    assert tokens[0] == first and len(set(tokens)) == len(tokens)  # never repeats a generated token
    mild = GenerationConfig(repetition_penalty=1.5, repetition_penalty_increase=0.5)
    out = generate(steps, PROMPTS, mild, max_length=12, eos_id=-1, keep_logits=True)
    cache = np.zeros_like(out.logits[0])
    for step, logits in enumerate(out.logits):  # replay the rule of docs/model.md §5
        for r in range(3):
            if step < len(out.tokens[r]):
                token = out.tokens[r][step]
                assert token == int(np.argmax(logits[r] - cache[r]))
                cache[r, token] = 1.5 if cache[r, token] == 0 else cache[r, token] + 0.5


def test_sampling_is_seeded(steps):
    from iflytekspark.generation_config import GenerationConfig
    from iflytekspark.inference.generate import generate

    config = GenerationConfig(do_sample=True, top_k=20, top_p=0.9, temperature=1.5)
    a = generate(steps, PROMPTS, config, max_length=12, eos_id=-1, seed=5).tokens
    assert a == generate(steps, PROMPTS, config, max_length=12, eos_id=-1, seed=5).tokens
    assert a != generate(steps, PROMPTS, config, max_length=12, eos_id=-1, seed=6).tokens


def test_bad_prompts_are_errors(steps):
    from iflytekspark.inference.generate import GenerationError, generate

    with pytest.raises(GenerationError, match="prompt 1: empty"):
        generate(steps, [[1, 2], []], max_length=8)
    with pytest.raises(GenerationError, match="prompt 0: 8 tokens"):
        generate(steps, [list(range(8))], max_length=8)
