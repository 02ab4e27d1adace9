"""LocalTransport: the same interface on this machine (subprocess without a shell, atomic files)."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from orchestrator.errors import RemoteCommandError, TransportError
from orchestrator.transport import LocalTransport


@pytest.fixture
def local():
    return LocalTransport("127.0.0.1")


def test_run_returns_output_and_code(local):
    r = local.run(
        [sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
        check=False,
    )
    assert (r.host, r.exit_code, r.stdout, r.stderr) == ("127.0.0.1", 3, "out\n", "err\n")


def test_run_no_shell_and_env_and_stdin(local):
    r = local.run(
        [
            sys.executable,
            "-c",
            "import os, sys; print(os.environ['X'], sys.stdin.read(), sys.argv[1])",
            "$(id)",
        ],
        env={"X": "a b"},
        stdin=b"in",
    )
    assert r.stdout == "a b in $(id)\n"


def test_check_raises_remote_command_error_with_masked_command(local):
    with pytest.raises(RemoteCommandError) as err:
        local.run(["false"], env={"API_TOKEN": "tok123"})
    assert "tok123" not in str(err.value) and "API_TOKEN=***" in str(err.value)


def test_missing_program_is_exit_127(local):
    r = local.run(["/nonexistent/prog"], check=False)
    assert r.exit_code == 127 and "not found" in r.stderr


def test_missing_cwd_fails_like_cd(local):
    r = local.run(["true"], cwd="/nonexistent/dir", check=False)
    assert r.exit_code == 1 and "cd:" in r.stderr


def test_timeout_is_transport_error_naming_host(local):
    with pytest.raises(TransportError, match="127.0.0.1.*timed out after 0.2s"):
        local.run(["sleep", "5"], timeout=0.2)


def test_put_is_atomic_with_parents_and_mode(local, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 100_000)
    dest = tmp_path / "a" / "b" / "dest.bin"
    local.put(src, str(dest), mode=0o600)
    assert dest.read_bytes() == src.read_bytes()
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert os.listdir(dest.parent) == ["dest.bin"]  # no temp file left behind


def test_put_replaces_and_put_bytes(local, tmp_path):
    dest = tmp_path / "f.txt"
    dest.write_text("old")
    local.put_bytes(b"new", str(dest), mode=0o640)
    assert dest.read_text() == "new" and stat.S_IMODE(dest.stat().st_mode) == 0o640


def test_get_copies_and_missing_file_is_transport_error(local, tmp_path):
    src = tmp_path / "remote.log"
    src.write_text("log\n")
    local.get(str(src), tmp_path / "got" / "local.log")
    assert (tmp_path / "got" / "local.log").read_text() == "log\n"
    with pytest.raises(TransportError, match="cannot read"):
        local.get(str(tmp_path / "missing"), tmp_path / "x")
