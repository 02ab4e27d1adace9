"""Bad input to run_mode predict: a clear error, exit code and no traceback, before MindSpore starts.

``run.main`` is called in this process: input checks run before any model is built.
"""

from __future__ import annotations

import logging

import pytest

from tests.fixtures.model import random_weights

from .conftest import run_config

pytestmark = pytest.mark.mindspore

SIZES = dict(
    seq_length=16, num_layers=1, hidden_size=16, num_heads=2, ffn_hidden_size=32, sparse_local_size=4
)


@pytest.fixture(scope="module")
def yaml(tmp_path_factory, tiny_tokenizer):
    from iflytekspark.testing import write_run_config
    from iflytekspark.tokenizer import Tokenizer

    vocab = Tokenizer(tiny_tokenizer).vocab_size
    cfg = run_config(vocab_size=vocab, run_mode="predict", **SIZES)
    return write_run_config(tmp_path_factory.mktemp("predict_errors") / "run.yaml", cfg)


def _main(yaml, tokenizer, *args: str):
    from iflytekspark.run import main

    return main(
        ["--config", str(yaml), "--tokenizer_file", str(tokenizer), "--load_checkpoint", "none", *args]
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (("--predict_data", "[hello####bye]"), "empty question(s) at index 1"),
        (("--predict_data", "[" + "long words " * 20 + "]"), "too long for the length limit 16"),
        (("--predict_data", "[hi]", "--prompt", "<User> question<end><Bot> "), "has no {} for the question"),
        (("--predict_data", "[hi]", "--predict_length", "40", "--prompt", ""), None),  # raw: passes checks
    ],
    ids=["empty", "too-long", "template", "raw-ok"],
)
def test_input_errors(yaml, tiny_tokenizer, capsys, monkeypatch, args, message):
    import iflytekspark.tasks.predict as predict

    # MindFormers' log handler keeps the stderr of the test that created it: silence its write errors
    monkeypatch.setattr(logging, "raiseExceptions", False)
    monkeypatch.setattr(predict, "init_context", _stop)  # nothing past the checks in this process
    code = _main(yaml, tiny_tokenizer, *args)
    err = capsys.readouterr().err
    if message is None:
        assert code == 9 and "checks passed" in err
    else:
        assert code == 1 and "error: " in err and message in err, err
    assert "Traceback" not in err


def _stop(config):
    from iflytekspark.errors import IFlytekSparkError

    class ChecksPassed(IFlytekSparkError):
        exit_code = 9

    raise ChecksPassed("checks passed")


def test_tokenizer_directory_without_files(yaml, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(logging, "raiseExceptions", False)
    code = _main(yaml, tmp_path, "--predict_data", "[hi]")
    err = capsys.readouterr().err
    assert code == 1 and "no *.model file(s)" in err and "Traceback" not in err


def test_checkpoint_of_another_config(yaml, tmp_path, graph_module):
    """build_model refuses it with every mismatch named (run.main prints it like the errors above)."""
    from iflytekspark.errors import CheckpointError, IFlytekSparkError
    from iflytekspark.inference.runtime import build_model
    from mindformers import MindFormerConfig

    config = MindFormerConfig(str(yaml))
    sizes = {**dict(config.model.model_config), "hidden_size": 8}
    ckpt = tmp_path / "other.ckpt"
    weights = random_weights(sizes)
    graph_module.save_checkpoint(
        [{"name": k, "data": graph_module.Tensor(v)} for k, v in weights.items()], str(ckpt)
    )
    config.load_checkpoint = str(ckpt)
    with pytest.raises(CheckpointError, match="shape mismatch: transformer.embedding") as err:
        build_model(config)
    assert isinstance(err.value, IFlytekSparkError)


def test_tokenizer_larger_than_the_model_vocabulary(tmp_path, tiny_tokenizer, capsys, monkeypatch):
    from iflytekspark.testing import write_run_config

    monkeypatch.setattr(logging, "raiseExceptions", False)
    small = write_run_config(tmp_path / "run.yaml", run_config(vocab_size=100, run_mode="predict", **SIZES))
    code = _main(small, tiny_tokenizer / "tokenizer.model", "--predict_data", "[hi]")
    err = capsys.readouterr().err
    assert code == 2 and "more than the model's vocab_size 100" in err and "Traceback" not in err
