"""The framed multi-step script through a real shell (LocalTransport): outputs and exit codes split back."""

from __future__ import annotations

import pytest

from orchestrator.discover.discover import discover_node
from orchestrator.discover.probe import batch_script, find_tool_script, run_steps, split_output
from orchestrator.errors import TransportError
from orchestrator.transport import LocalTransport


def test_steps_run_in_order_with_their_own_exit_codes():
    steps = {
        "one": "echo first; echo second",
        "fails": "echo oops >&2; exit 3",
        "quiet": "true",
        "locale": 'echo "$LC_ALL"',
        "marker_lookalike": "echo '@@0000@@ end 9'",
    }
    out = run_steps(LocalTransport("me"), steps)
    assert list(out) == list(steps)
    assert (out["one"].exit_code, out["one"].output) == (0, "first\nsecond\n")
    assert (out["fails"].exit_code, out["fails"].output) == (3, "oops\n")
    assert out["quiet"].output == "" and out["quiet"].ok
    assert out["locale"].output == "C\n"
    assert out["marker_lookalike"].output == "@@0000@@ end 9\n"


def test_find_tool_uses_path_then_fallbacks(tmp_path):
    tool = tmp_path / "fake-tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    out = run_steps(
        LocalTransport("me"),
        {
            "on_path": find_tool_script("sh", ()),
            "fallback": find_tool_script("no-such-tool-xyz", ("/nonexistent/x", str(tool))),
            "absent": find_tool_script("no-such-tool-xyz", ("/nonexistent/x",)),
        },
    )
    assert out["on_path"].ok and out["on_path"].output.strip().endswith("/sh")
    assert out["fallback"].output.strip() == str(tool)
    assert out["absent"].exit_code == 1 and out["absent"].output == ""


def test_cut_output_marks_the_step_unfinished():
    script_out = "@@ab@@ begin x\npartial"
    assert split_output(script_out, "ab")["x"].exit_code == 255


def test_script_that_never_ran_is_a_transport_error():
    class Broken(LocalTransport):
        def run(self, argv, **kw):
            return super().run(["sh", "-c", "echo no shell here >&2; exit 126"], check=False)

    with pytest.raises(TransportError, match="probe script failed.*no shell here"):
        run_steps(Broken("me"), {"a": "true"})


def test_batch_script_quotes_step_names():
    assert "'@@ff@@ begin a'" in batch_script({"a": "true"}, "ff")


def test_discover_this_machine_reads_the_hostname():
    import socket

    found = discover_node(LocalTransport("127.0.0.1"))
    assert found.hostname == socket.gethostname()
