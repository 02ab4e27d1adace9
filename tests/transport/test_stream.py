"""Transport.open_stream on this machine (LocalTransport): stdin written piece by piece, stdout read
while the command runs, stderr collected on the side, exit codes, timeouts and commands that cannot start."""

from __future__ import annotations

import hashlib
import os
import sys

import pytest

from orchestrator.errors import TransportError
from orchestrator.transport import LocalTransport, Stream

ECHO_LINES = "import sys\nfor line in sys.stdin:\n    print(line.strip().upper(), flush=True)\n"
DIGEST = (
    "import hashlib, sys\nh = hashlib.sha256()\nwhile True:\n    b = sys.stdin.buffer.read(65536)\n"
    "    if not b:\n        break\n    h.update(b)\nprint(h.hexdigest())\nsys.stderr.write('e' * 300000)\n"
    "sys.exit(3)\n"
)


@pytest.fixture
def local():
    return LocalTransport("127.0.0.1")


def test_a_line_is_answered_before_the_next_is_sent(local):
    with local.open_stream([sys.executable, "-c", ECHO_LINES]) as s:
        assert isinstance(s, Stream)
        s.write(b"one\n")
        assert s.readline(timeout=10) == b"ONE\n"
        s.write(b"two\nthree\n")
        assert s.readline(timeout=10) == b"TWO\n"
        end = s.wait(timeout=10)
    assert end.ok and end.stdout == b"THREE\n" and end.stderr == b""


def test_send_file_exit_code_and_large_stderr(local, tmp_path):
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(3_000_000))
    with local.open_stream([sys.executable, "-c", DIGEST]) as s:
        s.write(b"head")
        s.send_file(open(blob, "rb"), 1000, 2_000_000)
        end = s.wait(timeout=30)
    expected = hashlib.sha256(b"head" + blob.read_bytes()[1000:2_001_000]).hexdigest()
    assert (end.exit_code, end.stdout.strip().decode(), len(end.stderr)) == (3, expected, 300000)


def test_read_counts_and_env_cwd(local, tmp_path):
    code = "import os; print(os.environ['GREETING'] + ' ' + os.getcwd())"
    with local.open_stream([sys.executable, "-c", code], env={"GREETING": "hi"}, cwd=str(tmp_path)) as s:
        assert s.read(3, timeout=10) == b"hi "
        assert s.read(-1, timeout=10) == f"{tmp_path}\n".encode()
        assert s.readline(timeout=1) == b""  # end of output
        assert s.wait().exit_code == 0


def test_silence_is_a_timeout_and_close_ends_the_command(local):
    s = local.open_stream(["sleep", "30"], env={"API_TOKEN": "tok123"})
    with pytest.raises(
        TransportError, match=r"127.0.0.1: `env -- 'API_TOKEN=\*\*\*' sleep 30` gave no output within 0.2s"
    ):
        s.readline(timeout=0.2)
    s.close()
    assert s.proc.poll() is not None  # type: ignore[attr-defined]


def test_commands_that_cannot_start_end_like_a_shell(local, tmp_path):
    missing = local.open_stream(["/nonexistent/prog"])
    end = missing.wait()
    assert end.exit_code == 127 and b"not found" in end.stderr
    with pytest.raises(TransportError, match="stopped taking input"):
        missing.write(b"x")
    no_dir = local.open_stream(["true"], cwd=str(tmp_path / "nope")).wait()
    assert no_dir.exit_code == 1 and b"No such file or directory" in no_dir.stderr


def test_writing_to_a_command_that_ended_is_transport_error(local):
    s = local.open_stream(["true"])
    assert s.wait().exit_code == 0
    with pytest.raises(TransportError, match="stopped taking input"):
        s.write(b"late")
    s.close()
