"""``python -m iflytekspark.run`` fails clearly (message, exit code, no traceback) on a bad launch."""

from __future__ import annotations

import pytest

from tests.fixtures.train import run_entry, tiny_run_yaml

pytestmark = pytest.mark.mindspore

CLEAN_ENV = {
    k: None
    for k in (
        "MS_ROLE",
        "MS_SCHED_HOST",
        "MS_SCHED_PORT",
        "MS_WORKER_NUM",
        "MS_NODE_ID",
        "RANK_TABLE_FILE",
        "RANK_ID",
        "DEVICE_ID",
        "RANK_SIZE",
    )
}


def test_use_parallel_without_a_launcher_environment(tmp_path, pretrain_mindrecord):
    result = run_entry(tmp_path, tiny_run_yaml(pretrain_mindrecord), "--use_parallel", "True", env=CLEAN_ENV)
    assert result.proc.returncode == 2
    assert "error: --use_parallel True, but no launcher environment was found" in result.proc.stderr
    assert "MS_SCHED_HOST" in result.proc.stderr and "Traceback" not in result.proc.stderr
