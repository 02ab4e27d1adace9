"""Reading the raw JSON: clean-up, and clear errors (file, record number, exit code 2, no traceback)."""

from __future__ import annotations

import json

import pytest
from iflytekspark.data.__main__ import main
from iflytekspark.data.records import DataError, Record, clean, load_records


def write(tmp_path, payload, name="raw.json"):
    path = tmp_path / name
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        path.write_text(payload if isinstance(payload, str) else json.dumps(payload), encoding="utf-8")
    return path


def test_clean_strips_and_turns_every_newline_form_into_ret():
    assert clean("  a\\r\\nb\\nc\r\nd\ne \n") == "a<ret>b<ret>c<ret>d<ret>e"
    assert clean("x\\r\ny") == "x<ret>y"


def test_load_records_keeps_fields_as_read_and_defaults_input(tmp_path):
    # cleaning is the encoder's: it strips the joined instruction + input once (see test_packing)
    path = write(
        tmp_path,
        [{"instruction": " Q ", "output": "A\\nB"}, {"instruction": "q\n", "input": " i", "output": "o"}],
    )
    assert load_records(path, ("instruction", "output")) == [
        Record(" Q ", "", "A\\nB"),
        Record("q\n", " i", "o"),
    ]


def test_every_problem_is_named_with_its_record_number(tmp_path):
    path = write(tmp_path, [{"output": "ok"}, {"instruction": "x"}, "text", {"output": 3}])
    with pytest.raises(DataError) as err:
        load_records(path, ("output",))
    text = str(err.value)
    assert "3 problem(s)" in text
    assert f'{path}: record 2: missing field "output"' in text
    assert f"{path}: record 3: is a JSON str, expected an object" in text
    assert f'{path}: record 4: field "output" is int, expected a string' in text


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"instruction": "a"}, "top level is a JSON dict, expected an array"),
        ('[{"output": "a"},\n{"output": ', ":2: not valid JSON"),
        (b'[{"output": "ok"},\n{"output": "\xff\xfe"}]', ":2: not UTF-8"),
        ([], "the array is empty"),
    ],
)
def test_malformed_files_give_a_clear_error(tmp_path, payload, message):
    with pytest.raises(DataError, match=message):
        load_records(write(tmp_path, payload))


def test_cli_prints_the_problem_and_exits_2_without_traceback(tmp_path, tiny_tokenizer, capsys):
    path = write(tmp_path, [{"instruction": "x", "output": "y"}, {"output": "no instruction"}])
    argv = ["sft", "--tokenizer", str(tiny_tokenizer), "--raw_data_path", str(path)]
    assert main(argv + ["--output_filename", str(tmp_path / "o.mindrecord")]) == 2
    err = capsys.readouterr().err
    assert f'error: 1 problem(s) in the input:\n{path}: record 2: missing field "instruction"' in err
    assert "Traceback" not in err
    assert not (tmp_path / "o.mindrecord").exists()


def test_cli_rejects_bad_options_and_tokenizer(tmp_path, tiny_tokenizer, capsys):
    path = write(tmp_path, [{"instruction": "x", "output": "y"}])
    base = ["pretrain", "--raw_data_path", str(path)]
    assert main(base + ["--tokenizer", str(tiny_tokenizer), "--output_filename", "x.bin"]) == 2
    assert "must end in .mindrecord" in capsys.readouterr().err
    assert (
        main(base + ["--tokenizer", str(tmp_path), "--output_filename", str(tmp_path / "x.mindrecord")]) == 2
    )
    assert "--tokenizer: tokenizer" in capsys.readouterr().err
