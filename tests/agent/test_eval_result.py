"""An eval rank's result line travels from its log through the agent's status into the job's status
(``status --json`` ``result``, and the message the status view prints)."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import replace
from pathlib import Path

from orchestrator.agent import client
from orchestrator.agent.node.progress import parse_eval
from orchestrator.jobs.model import EvalResult, JobState, JobStatus, job_result
from orchestrator.launch.watcher import node_status
from orchestrator.transport.base import RunResult
from tests.agent.conftest import AgentHarness


def eval_line(loss: float, rows: int, tokens: int) -> str:
    """The line iflytekspark.tasks.evaluate prints, with its own format."""
    return f"eval: loss {loss:.6f}, perplexity {math.exp(loss):.4f}, rows {rows}, tokens {tokens}"


def test_parse_eval_takes_the_last_result_line():
    log = "\n".join(["[WARNING] ME(1:2) noise", eval_line(9.0, 1, 2), "x eval: loss 1, perplexity 2, rows 3, tokens 4",
                     eval_line(5.25, 12, 340), "predict: done"])  # fmt: skip
    assert parse_eval(log) == {
        "loss": 5.25,
        "perplexity": round(math.exp(5.25), 4),
        "rows": 12,
        "tokens": 340,
    }
    assert parse_eval("eval: loss nan, perplexity nan, rows 1, tokens 0")["rows"] == 1
    assert parse_eval("{ Epoch:[  1/  1], step:[    2/    4], loss: 5.000000, ") is None


def test_the_result_reaches_the_job_status(agent: AgentHarness):
    line = eval_line(4.5, 6, 180)
    rank = dict(agent.rank(), argv=[sys.executable, "-c", f"print('loading'); print({line!r})"])
    spec = Path(agent.spec("ev", [[]]))
    spec.write_text(json.dumps(dict(json.loads(spec.read_text()), ranks=[rank])))
    code, answer = agent.run("start", "--spec", str(spec))
    assert code == 0, answer
    st = agent.wait("ev", ("succeeded",))
    expect = {"loss": 4.5, "perplexity": round(math.exp(4.5), 4), "rows": 6, "tokens": 180}
    assert st["processes"][0]["result"] == expect

    parsed = client.parse_status(RunResult("n1", "status", 0, json.dumps(dict(st, ok=True)), "", 0.1))
    node = node_status("n1", parsed, 1.0)
    assert node.ranks[0].result == EvalResult(**expect)
    later = replace(
        node, ranks=(replace(node.ranks[0], rank=1, result=EvalResult(9.0, 1.0, 1, 1)),) + node.ranks
    )
    assert job_result([later]) == EvalResult(**expect)  # the lowest rank's

    status = JobStatus("ev", "eval", JobState.SUCCEEDED, 2.0, nodes=(node,), result=job_result([node]))
    data = json.loads(json.dumps(status.to_dict()))
    assert data["result"] == expect and data["nodes"][0]["ranks"][0]["result"] == expect
    assert JobStatus.from_dict(data) == status
    assert str(status.result) == "eval: loss 4.5000, perplexity 90.0171 (6 rows, 180 tokens)"
