"""Entry point of `orchestrate`: finds the verbs and maps errors to messages and exit codes.

Each ``orchestrator/cli/cmd_<verb>.py`` exposes ``command``, a ``click.Command`` (or group). Verbs are
discovered by file name, so adding a verb touches no other file. Verb modules import heavy libraries
inside their functions, keeping ``orchestrate --help`` fast.

Exit codes: 0 ok, 1 unexpected error, 2 bad input, 3 no valid plan, 4 unreachable node,
5 remote command failed, 6 job failed, 7 simulated-cluster error, 130 interrupted.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from orchestrator import __version__
from orchestrator.errors import OrchestrateError


def _verb_modules() -> list[str]:
    import orchestrator.cli as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("cmd_"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="orchestrate")
def cli() -> None:
    """Plan, launch, watch and stop iFlytekSpark jobs on Ascend clusters."""


for _name in _verb_modules():
    cli.add_command(importlib.import_module(f"orchestrator.cli.{_name}").command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every OrchestrateError becomes a one-paragraph message and its exit code."""
    try:
        cli.main(args=argv, prog_name="orchestrate", standalone_mode=False)
    except OrchestrateError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
