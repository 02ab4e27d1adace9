"""Imported by the node Python's ``orchestrate_sim_node.pth`` at every start: hands
``python -m iflytekspark.run --config <Ascend YAML>`` on a simulated Ascend node to the stand-in rank
(which exits the process); every other start goes on untouched."""

from __future__ import annotations

import sys


def _run_args():
    """The arguments after ``-m iflytekspark.run``, or None for any other program."""
    argv = list(getattr(sys, "orig_argv", None) or [])
    for i, arg in enumerate(argv[1:], 1):
        if arg == "-m":
            return argv[i + 2 :] if argv[i + 1 : i + 2] == ["iflytekspark.run"] else None
        if not arg.startswith("-"):
            return None
    return None


_ARGS = _run_args()
if _ARGS is not None:
    import osim_standin

    osim_standin.maybe_run(_ARGS)
