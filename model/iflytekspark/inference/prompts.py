"""Questions in, prompts out: ``predict_data`` parsing and the chat template (docs/model.md §5). Pure Python.

``predict_data`` is ``[q1##q2##...]`` (a bare string is one question) or a .json/.jsonl file with one
``{"input": ...}`` object per line (a .json file may also hold one JSON array of such objects).
The template's ``{}`` is replaced by the question; ``None`` / "" mean the raw question.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional, Sequence

from ..errors import IFlytekSparkError

__all__ = ["DEFAULT_TEMPLATE", "PromptError", "read_questions", "apply_template", "check_lengths"]

DEFAULT_TEMPLATE = "<User> {}<end><Bot> "


class PromptError(IFlytekSparkError, ValueError):
    """predict_data or the prompt template is unusable; the message names the question or line."""


def _from_file(path: Path) -> List[str]:
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if path.suffix == ".json" and stripped.startswith("["):
        try:
            records = [(i + 1, r) for i, r in enumerate(json.loads(text))]
        except json.JSONDecodeError as exc:
            raise PromptError(f"{path}: not valid JSON ({exc})") from None
    else:
        records = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise PromptError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
    questions = []
    for number, record in records:
        if not isinstance(record, dict) or not isinstance(record.get("input"), str):
            raise PromptError(f'{path}: record {number} has no string "input" field')
        questions.append(record["input"])
    return questions


def read_questions(predict_data: str) -> List[str]:
    """The questions of ``predict_data``; empty questions (or none at all) are an error."""
    if not predict_data or not predict_data.strip():
        raise PromptError("predict_data is empty: pass --predict_data '[q1##q2]' or a .json/.jsonl file")
    path = Path(predict_data)
    if path.suffix in (".json", ".jsonl"):
        if not path.is_file():
            raise PromptError(f"predict_data {path}: no such file")
        questions = _from_file(path)
        where = str(path)
    else:
        text = predict_data.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        questions = text.split("##")
        where = "--predict_data"
    empty = [str(i) for i, q in enumerate(questions) if not q.strip()]
    if not questions or empty:
        raise PromptError(f"{where}: empty question(s) at index {', '.join(empty) or '0'}")
    return questions


def apply_template(questions: Sequence[str], template: Optional[str] = DEFAULT_TEMPLATE) -> List[str]:
    """Each question put into the template at ``{}``; no template (None or "") keeps the raw question."""
    if not template:
        return list(questions)
    if "{}" not in template:
        raise PromptError(
            f"prompt template {template!r} has no {{}} for the question; e.g. {DEFAULT_TEMPLATE!r}"
        )
    return [template.replace("{}", q, 1) for q in questions]


def check_lengths(prompt_ids: Sequence[Sequence[int]], max_length: int) -> None:
    """Each encoded prompt must leave room for an answer: len < max_length (predict_length)."""
    too_long = [
        f"question {i}: {len(ids)} tokens" for i, ids in enumerate(prompt_ids) if len(ids) >= max_length
    ]
    if too_long:
        raise PromptError(
            f"prompt(s) too long for the length limit {max_length} (prompt + answer):\n"
            + "\n".join(f"  - {t}" for t in too_long)
            + "\nfix: shorten them or raise --predict_length"
        )
