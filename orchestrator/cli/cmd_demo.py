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
