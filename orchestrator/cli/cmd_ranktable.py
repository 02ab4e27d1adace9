"""`orchestrate ranktable`: merge per-node HCCL rank tables and check a rank table."""

from __future__ import annotations

from pathlib import Path

import click

_profile_option = click.option(
    "--profile", default=None, help="Hardware profile whose device and NIC rules apply."
)


def _profile(name):
    if name is None:
        return None
    from orchestrator.errors import InputError, Problem
    from orchestrator.inventory.profiles import PROFILES

    if name not in PROFILES:
        raise InputError(
            [
                Problem(
                    "--profile",
                    "profile",
                    f"unknown profile {name!r}",
                    f"use one of {', '.join(sorted(PROFILES))}",
                )
            ]
        )
    return PROFILES[name]


def _summary(table) -> str:
    lines = [f"version {table.version}: {table.server_count} server(s), world size {table.world_size}"]
    for s in table.servers:
        ranks = table.ranks_of(s.server_id)
        devices = ",".join(d.device_id for d in s.devices)
        lines.append(f"  {s.server_id:<20} ranks {min(ranks)}-{max(ranks)}  devices {devices}")
    return "\n".join(lines)


@click.group("ranktable")
def command() -> None:
    """HCCL rank tables: merge per-node files (ours or mindformers' hccl_tools) and check them."""


@command.command("merge")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the merged table (nothing is written elsewhere).",
)
@_profile_option
def merge_cmd(files: tuple[Path, ...], output: Path, profile: str | None) -> None:
    """Merge FILES into one table, re-ranked by server_id string order (argument order is irrelevant).

    Refuses duplicate servers or device IPs, mixed versions, and (with --profile) broken device or
    NIC rules; writes OUTPUT only when the merged table has no problem.
    """
    from orchestrator.errors import InputError
    from orchestrator.ranktable import check_rank_table, import_hccl_tools_files, write_rank_table

    hw = _profile(profile)
    table = import_hccl_tools_files(files)
    problems = check_rank_table(table, hw, str(output))
    if problems:
        raise InputError(problems)
    write_rank_table(table, output)
    click.echo(_summary(table))
    click.echo(f"written: {output}")


@command.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_profile_option
def check_cmd(file: Path, profile: str | None) -> None:
    """Check FILE: structure, duplicates, rank order and (with --profile) the device and NIC rules."""
    from orchestrator.errors import InputError
    from orchestrator.ranktable import check_rank_table, load_rank_table

    table = load_rank_table(file)
    problems = check_rank_table(table, _profile(profile), str(file))
    if problems:
        raise InputError(problems)
    click.echo(_summary(table))
    click.echo(f"ok: {file}")
