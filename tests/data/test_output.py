"""``python -m iflytekspark.data`` refuses bad --pad_id and output paths before any work, writes its output
whole or not at all (a failed run keeps the previous file), and never writes an empty MindRecord."""

from __future__ import annotations

import os
import re

import pytest
from iflytekspark.data.__main__ import main
from iflytekspark.tokenizer import Tokenizer

MISSING = "no-such-raw.json"  # options are checked before the raw data is read: this is never opened


def run(capsys, tokenizer, raw, out, *extra):
    """main() in this process (one tokenising process), seq_length 16 unless ``extra`` says otherwise."""
    args = ["sft", "--tokenizer", str(tokenizer), "--raw_data_path", str(raw), "--output_filename", str(out)]
    code = main(args + ["--seq_length", "16", "--workers", "1", *extra])
    return code, capsys.readouterr()


def loader_scan(folder):
    """The files MindFormers' CausalLanguageModelDataset trains on when dataset_dir is ``folder``
    (``_process_mindrecord_data``: os.walk, names matching ``mindrecord\\d*$``)."""
    rule = re.compile(r"mindrecord\d*$")
    return sorted(os.path.join(r, f) for r, _, files in os.walk(folder) for f in files if rule.findall(f))


@pytest.mark.parametrize("pad", ["-1", "vocab", str(2**70)])
def test_pad_id_outside_the_vocabulary_is_refused_before_any_work(tmp_path, tiny_tokenizer, capsys, pad):
    size = Tokenizer(tiny_tokenizer).vocab_size
    pad = str(size) if pad == "vocab" else pad
    out = tmp_path / "o.mindrecord"
    code, cap = run(capsys, tiny_tokenizer, tmp_path / MISSING, out, "--pad_id", pad)
    assert code == 2
    assert f"--pad_id {pad}: must be a token id of the tokenizer, 0 to {size - 1}" in cap.err
    assert "Traceback" not in cap.err and MISSING not in cap.err
    assert not out.exists()
    code, cap = run(capsys, tiny_tokenizer, tmp_path / MISSING, out, "--pad_id", str(size - 1))
    assert code == 2 and "--pad_id" not in cap.err and MISSING in cap.err  # the last id is valid


@pytest.mark.parametrize("which", ["output", "index"])
def test_output_path_that_is_a_non_empty_folder_is_refused_before_any_work(
    tmp_path, tiny_tokenizer, capsys, which
):
    out = tmp_path / "data.mindrecord"
    folder = out if which == "output" else tmp_path / "data.mindrecord.db"
    (folder / "keep").mkdir(parents=True)
    code, cap = run(capsys, tiny_tokenizer, tmp_path / MISSING, out)
    assert code == 2
    assert f"--output_filename {out}: {folder} is a folder that is not empty" in cap.err
    assert "Traceback" not in cap.err and MISSING not in cap.err
    assert [p.name for p in folder.iterdir()] == ["keep"]


@pytest.mark.mindspore
@pytest.mark.parametrize("stop", ["disk full", "Ctrl-C"])
def test_failed_or_interrupted_run_keeps_the_previous_output_and_stays_out_of_the_loader_scan(
    tmp_path, tiny_tokenizer, tiny_corpus, capsys, monkeypatch, stop
):
    import iflytekspark.data.pipeline as pipeline
    import iflytekspark.data.writer as writer
    import mindspore.dataset as ds

    data = tmp_path / "data"
    data.mkdir()
    out, index = data / "sft.mindrecord", data / "sft.mindrecord.db"
    out.write_bytes(b"previous output")
    index.write_bytes(b"previous index")
    seen = {}
    real_pack = pipeline.pack_sft

    def stopping(*args):
        for number, row in enumerate(real_pack(*args)):
            if number == 40:  # the writer is open: where is the new file, what would training read?
                seen["partial"] = [p for p in tmp_path.rglob("sft.mindrecord") if p != out]
                seen["scan"] = loader_scan(data)
                raise OSError(28, "No space left on device") if stop == "disk full" else KeyboardInterrupt
            yield row

    monkeypatch.setattr(pipeline, "pack_sft", stopping)
    monkeypatch.setattr(writer, "BATCH", 8)  # rows reach the file before the stop
    try:
        code, cap = run(capsys, tiny_tokenizer, tiny_corpus, out)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main()")
    except OSError as exc:
        code, cap = exc.errno, capsys.readouterr()
    assert (code, "interrupted" in cap.err) == ((28, False) if stop == "disk full" else (130, True))
    assert len(seen["partial"]) == 1 and data not in seen["partial"][0].parents  # written elsewhere
    assert seen["scan"] == [str(out)]
    assert out.read_bytes() == b"previous output" and index.read_bytes() == b"previous index"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["data", "sft.mindrecord", "sft.mindrecord.db"]

    monkeypatch.setattr(pipeline, "pack_sft", real_pack)
    code, cap = run(capsys, tiny_tokenizer, tiny_corpus, out)
    assert code == 0, cap.err
    rows = int(cap.out.split("rows ")[1].split()[0])
    dataset = ds.MindDataset(str(out), columns_list=["input_ids", "loss_mask"], shuffle=False)
    assert dataset.get_dataset_size() == rows > 40
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["data", "sft.mindrecord", "sft.mindrecord.db"]


@pytest.mark.mindspore
def test_rejecting_every_sample_is_an_error_and_writes_nothing(tmp_path, tiny_tokenizer, tiny_corpus, capsys):
    out = tmp_path / "data" / "sft.mindrecord"
    args = ("--overlong", "reject", "--seq_length", "2")
    code, cap = run(capsys, tiny_tokenizer, tiny_corpus, out, *args)
    assert code != 0
    assert "no rows to write: all 96 sample(s) were rejected as over-long" in cap.err
    assert "seq_length + 1 = 3 ids, --seq_length 2" in cap.err
    assert "Traceback" not in cap.err and "rows 0" not in cap.out
    assert not out.exists() and not out.with_name("sft.mindrecord.db").exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
