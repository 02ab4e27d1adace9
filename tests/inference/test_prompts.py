"""predict_data parsing, the prompt template and the length check (pure Python)."""

from __future__ import annotations

import json

import pytest
from iflytekspark.inference.prompts import (
    DEFAULT_TEMPLATE,
    PromptError,
    apply_template,
    check_lengths,
    read_questions,
)


def test_bracket_list_and_bare_string():
    assert read_questions("[What is rain?##Say hi]") == ["What is rain?", "Say hi"]
    assert read_questions("Just one") == ["Just one"]


def test_jsonl_and_json_files(tmp_path):
    lines = tmp_path / "q.jsonl"
    lines.write_text('{"input": "a"}\n\n{"input": "b\\nc"}\n', encoding="utf-8")
    assert read_questions(str(lines)) == ["a", "b\nc"]
    array = tmp_path / "q.json"
    array.write_text(json.dumps([{"input": "x"}, {"input": "y"}]), encoding="utf-8")
    assert read_questions(str(array)) == ["x", "y"]
    per_line = tmp_path / "p.json"
    per_line.write_text('{"input": "z"}\n', encoding="utf-8")
    assert read_questions(str(per_line)) == ["z"]


@pytest.mark.parametrize(
    "data, message",
    [("", "empty"), ("[a##  ##b]", "index 1"), ("[]", "index 0"), ("missing.jsonl", "no such file")],
)
def test_bad_predict_data(data, message):
    with pytest.raises(PromptError, match=message):
        read_questions(data)


def test_bad_records_name_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "ok"}\n{"question": "no input"}\n', encoding="utf-8")
    with pytest.raises(PromptError, match="record 2"):
        read_questions(str(bad))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"input": "ok"}\n{nope\n', encoding="utf-8")
    with pytest.raises(PromptError, match="broken.jsonl:2"):
        read_questions(str(broken))


def test_template():
    assert apply_template(["hi"]) == ["<User> hi<end><Bot> "]
    assert DEFAULT_TEMPLATE == "<User> {}<end><Bot> "
    assert apply_template(["hi {x}"], "Q: {} A:") == ["Q: hi {x} A:"]
    assert apply_template(["raw"], "") == apply_template(["raw"], None) == ["raw"]
    with pytest.raises(PromptError, match="no \\{\\}"):
        apply_template(["hi"], "<User> question<end><Bot> ")


def test_length_limit():
    check_lengths([[1, 2, 3]], 4)
    with pytest.raises(PromptError, match="question 1: 4 tokens"):
        check_lengths([[1, 2, 3], [1, 2, 3, 4]], 4)
