"""`orchestrate demo prepare [--out DIR]`: the demo's tiny tokenizer, corpus and pretraining MindRecord."""

from __future__ import annotations

import click

DEFAULT_OUT = "~/.orchestrate/demo"


@click.group("demo")
def command() -> None:
    """The main demo (`make demo`): a tiny iFlytekSpark pretrained by two ranks on this machine."""


@command.command("prepare")
@click.option(
    "--out", default=DEFAULT_OUT, show_default=True, help="Folder for tokenizer/, corpus.json, data/."
)
@click.option(
    "--records", default=160, show_default=True, help="Corpus records (rows of the dataset grow with it)."
)
@click.option("--seq-length", default=64, show_default=True, help="Model seq_length (the tiny preset's).")
def prepare(out: str, records: int, seq_length: int) -> None:
    """Write a tokenizer, an alpaca-style corpus and `data/pretrain.mindrecord` into OUT (skipped when present).

    Prints the dataset path. The embedded local inventory trains on the default OUT's dataset, so after
    `orchestrate demo prepare` a plain `orchestrate launch pretrain` runs the demo; with another OUT pass
    `--set job.train_dataset=PATH` to `plan` and `launch`.
    """
    import subprocess
    import sys
    from pathlib import Path

    from iflytekspark.testing import build_tokenizer, write_corpus

    root = Path(out).expanduser()
    data = root / "data" / "pretrain.mindrecord"
    if data.exists() and Path(f"{data}.db").exists():
        click.echo(str(data))
        return
    tokenizer = build_tokenizer(root / "tokenizer")
    corpus = write_corpus(root / "corpus.json", n=records)
    data.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "iflytekspark.data", "pretrain", "--tokenizer", str(tokenizer),
           "--raw_data_path", str(corpus), "--output_filename", str(data), "--seq_length", str(seq_length),
           "--workers", "1"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise click.ClickException(f"preprocessing failed ({' '.join(cmd)}):\n{proc.stderr.strip()}")
    click.echo(proc.stdout.strip(), err=True)
    click.echo(str(data))
