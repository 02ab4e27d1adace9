"""`orchestrate demo prepare|summary`: the demo's tokenizer, corpus and dataset; what the demo's job did."""

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
    "--records", default=1280, show_default=True, help="Corpus records (rows of the dataset grow with it)."
)
@click.option(
    "--sft-records", default=96, show_default=True, help="Records of the SFT set (data/sft.mindrecord)."
)
@click.option("--seq-length", default=64, show_default=True, help="Model seq_length (the tiny preset's).")
def prepare(out: str, records: int, sft_records: int, seq_length: int) -> None:
    """Write a tokenizer, alpaca-style corpora, `data/pretrain.mindrecord` and `data/sft.mindrecord` into
    OUT (each skipped when present).

    Prints the pretraining dataset's path. The embedded local inventory trains on the default OUT's
    dataset, so after `orchestrate demo prepare` a plain `orchestrate launch pretrain` runs the demo; with
    another OUT pass `--set job.train_dataset=PATH` to `plan` and `launch`. The tokenizer has 400
    pieces, the vocabulary the embedded default gives the tiny model.
    """
    from pathlib import Path

    from iflytekspark.testing import build_tokenizer, write_corpus

    root = Path(out).expanduser()
    tokenizer = root / "tokenizer"
    if not (tokenizer / "tokenizer.model").exists():
        build_tokenizer(tokenizer)
    sets = (
        ("pretrain", "corpus.json", records, 0, 24),
        ("sft", "sft.json", sft_records, 1, 10),
    )  # short answers fit SFT rows
    for kind, name, n, seed, words in sets:
        data = root / "data" / f"{kind}.mindrecord"
        if not (data.exists() and Path(f"{data}.db").exists()):
            _preprocess(
                kind, tokenizer, write_corpus(root / name, n=n, seed=seed, max_words=words), data, seq_length
            )
    click.echo(str(root / "data" / "pretrain.mindrecord"))


def _preprocess(kind: str, tokenizer, corpus, data, seq_length: int) -> None:
    import subprocess
    import sys

    data.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "iflytekspark.data", kind, "--tokenizer", str(tokenizer),
           "--raw_data_path", str(corpus), "--output_filename", str(data), "--seq_length", str(seq_length),
           "--workers", "1"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise click.ClickException(f"preprocessing failed ({' '.join(cmd)}):\n{proc.stderr.strip()}")
    click.echo(f"{kind}: {proc.stdout.strip()}", err=True)


NEXT_STEPS = (
    "orchestrate logs --rank 0            # the rank's MindFormers log",
    "orchestrate collect-logs             # every log, INDEX.md and loss.png in one folder",
    "orchestrate plan --task pretrain     # the plan: rank table, per-node YAML, env, memory estimate",
    "make demo-cluster                    # the same job on a simulated 2-node cluster, a rank killed",
)


@command.command("summary")
@click.argument("job", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
def summary(job: str | None, as_json: bool) -> None:
    """What JOB (default: the latest) did: loss first → last, tokens/s, its checkpoints, what to try next."""
    import json

    from orchestrator.jobs.state import resolve_job
    from orchestrator.launch.report import job_report, render_report

    report = job_report(resolve_job(job))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=1, sort_keys=True))
    else:
        click.echo(render_report(report, NEXT_STEPS))
