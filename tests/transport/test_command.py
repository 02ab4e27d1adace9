"""Commands as data: every argument survives the remote shell intact; secrets never show."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from orchestrator.errors import RemoteCommandError
from orchestrator.transport.base import (
    RunResult,
    build_command,
    checked,
    display_command,
    is_secret_key,
    mask,
)

NASTY = [
    "a b",
    "it's",
    '"dq"',
    "$(touch /tmp/pwned)",
    "`id`",
    "x;y",
    "*",
    "",
    "new\nline",
    "$HOME",
    "-n",
    "a=b",
]
ECHO_ARGV = [
    sys.executable,
    "-c",
    "import json, os, sys; print(json.dumps([sys.argv[1:], dict(os.environ)]))",
]


def _through_shell(command: str) -> tuple[list[str], dict]:
    """What a remote login shell would do with the command string (sh -c, as sshd runs it)."""
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_every_argument_survives_the_shell():
    argv, _ = _through_shell(build_command(ECHO_ARGV + NASTY))
    assert argv == NASTY


def test_env_is_passed_with_env_and_quoted_values():
    env = {"PLAIN": "1", "SPACED": "a b 'c' $(id)", "EMPTY": ""}
    argv, seen = _through_shell(build_command(ECHO_ARGV + ["x"], env=env))
    assert argv == ["x"]
    assert {k: seen[k] for k in env} == env


def test_cwd_changes_folder_before_running(tmp_path):
    folder = tmp_path / "with space"
    folder.mkdir()
    out = subprocess.run(
        ["sh", "-c", build_command(["pwd"], cwd=str(folder))], capture_output=True, text=True
    )
    assert out.stdout.strip() == str(folder)


def test_display_masks_secret_values_only():
    env = [("HF_TOKEN", "hf_abc123"), ("DB_PASSWORD", "pw"), ("RANK_ID", "3"), ("MS_SCHED_HOST", "10.0.0.1")]
    shown = display_command(["run"], env=env)
    assert "hf_abc123" not in shown and "=pw" not in shown
    assert "HF_TOKEN=***" in shown and "RANK_ID=3" in shown and "MS_SCHED_HOST=10.0.0.1" in shown
    assert "hf_abc123" in build_command(["run"], env=env)


@pytest.mark.parametrize(
    "key", ["API_KEY", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "SSH_PASSPHRASE", "my_password"]
)
def test_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["RANK_TABLE_FILE", "DEVICE_ID", "HCCL_IF_BASE_PORT", "PATH", "MONKEY"])
def test_ordinary_keys(key):
    assert not is_secret_key(key)


def test_failed_command_error_masks_secrets_in_output():
    result = RunResult("h1", "env -- TOKEN=*** run", 3, "using token s3cr3t\n", "bad s3cr3t\n", 0.1)
    with pytest.raises(RemoteCommandError) as err:
        checked(result, True, ["s3cr3t"])
    assert "s3cr3t" not in str(err.value) and "bad ***" in str(err.value)
    assert err.value.code == 3 and err.value.host == "h1"
    assert checked(result, False, ["s3cr3t"]) is result


def test_mask_longest_first():
    assert mask("abcd abc", ["abc", "abcd"]) == "*** ***"


@pytest.mark.parametrize("bad", [{"1X": "v"}, {"A-B": "v"}, {"A B": "v"}, {"A=B": "v"}])
def test_invalid_env_names_refused(bad):
    with pytest.raises(ValueError):
        build_command(["x"], env=bad)


def test_empty_command_refused():
    with pytest.raises(ValueError):
        build_command([])
