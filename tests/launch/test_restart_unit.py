"""Restart decisions, the resume point, plan binding and the offline-flow wiring, without a cluster."""

from __future__ import annotations

import struct
import sys
from dataclasses import replace

import pytest
import yaml

from orchestrator.errors import JobFailed
from orchestrator.inventory import parse_inventory
from orchestrator.inventory.defaults import default_inventory_text
from orchestrator.jobs.attempts import Attempt, Attempts
from orchestrator.jobs.model import JobState, can_move
from orchestrator.launch.binding import Binding, bind_plan, set_top_key, user_set_port
from orchestrator.launch.offline import FlowActions, run_offline
from orchestrator.launch.restart import decide
from orchestrator.launch.resume_point import SavedCheckpoint, choose, list_saved, prepare
from orchestrator.plan.planner import make_plan
from orchestrator.transport import LocalTransport

JOB = "20260101-000000-pretrain-abcd"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    work = tmp_path_factory.mktemp("node")
    text = default_inventory_text().replace("~/.orchestrate/local-node", str(work))
    inv = parse_inventory(text, "inv.yaml")
    return make_plan(
        inv, "finetune", ["job.train_dataset=/d/t.mindrecord", "job.load_checkpoint=/d/base.ckpt"]
    )


def _yaml(plan):
    return yaml.safe_load(plan.nodes[0].yaml_text)


def test_binding_gives_each_job_its_output_folder_and_a_port(base):
    bound = bind_plan(base, Binding(JOB, sched_port=40123))
    node, home = bound.nodes[0], base.nodes[0].job_dir
    assert _yaml(bound)["output_dir"] == f"{home}/output/{JOB}" and bound.job.output_dir == f"output/{JOB}"
    assert {dict(x.env)["MS_SCHED_PORT"] for x in node.launches} == {"40123"} and bound.sched_port == 40123
    assert [t for t in bound.transfers if t.kind == "input"] == [
        t for t in base.transfers if t.kind == "input"
    ]
    assert bind_plan(base, Binding(JOB, sched_port=40123)) == bound  # pure
    assert JOB not in repr(base)  # make_plan never saw the job id


def test_resume_binding_loads_the_jobs_own_checkpoint_with_auto_trans_off(base):
    bound = bind_plan(base, Binding(JOB, resume_dir="resume/attempt-2"))
    tree, node = _yaml(bound), bound.nodes[0]
    folder = f"{base.nodes[0].job_dir}/output/{JOB}/resume/attempt-2"
    assert (tree["load_checkpoint"], tree["resume_training"], tree["auto_trans_ckpt"]) == (
        folder,
        True,
        False,
    )
    assert tree["resume_by_last_timestamp_ckpt"] is True
    argv = node.launches[1].argv
    assert argv.count("--load_checkpoint") == 1 and argv[-6:] == ("--load_checkpoint", folder, "--resume", "True",
                                                                   "--auto_trans_ckpt", "False")  # fmt: skip
    assert not [t for t in bound.transfers if "load_checkpoint" in t.dest]  # the base checkpoint stays home
    assert [t for t in base.transfers if "load_checkpoint" in t.dest]
    assert bound.job.resume and bound.job.auto_trans_ckpt is False and bound.sched_port == base.sched_port


def test_binding_moves_the_jobs_own_files_into_its_run_folder_and_keeps_inputs_shared(base):
    """Two jobs of one task at once on a node (other NPUs) share no config, rank table, env file,
    commands.sh, log or working directory: each has ``<job folder>/runs/<job id>/``; inputs stay shared."""
    home = base.nodes[0].job_dir
    one, two = (bind_plan(base, Binding(j)) for j in (JOB, "20260101-000001-pretrain-beef"))
    assert one.nodes[0].job_dir == f"{home}/runs/{JOB}"
    for bound in (one, two):
        node = bound.nodes[0]
        own = node.job_dir + "/"
        for x in node.launches:
            argv, env = x.argv, dict(x.env)
            assert (
                x.cwd == node.job_dir
                and x.stdout.startswith(own + "output/log/")
                and x.log_dir.startswith(own)
            )
            assert argv[argv.index("--config") + 1].startswith(own + "config/")
            assert env["LOG_MF_PATH"] == own + "output/log"
            assert all(a.startswith(f"{home}/inputs/") for a in argv if "/inputs/" in a)
        generated = [t.dest for t in bound.transfers if t.kind == "generated"]
        assert generated and all(d.startswith(own) for d in generated)
        assert all(t.dest.startswith(f"{home}/inputs/") for t in bound.transfers if t.kind == "input")

    def files(b):
        return {x.stdout for x in b.nodes[0].launches} | {
            t.dest for t in b.transfers if t.kind == "generated"
        }

    assert not files(one) & files(two)
    assert _yaml(one)["output_dir"] != _yaml(two)["output_dir"]


def test_set_top_key_refuses_ambiguity_and_places_new_keys():
    assert set_top_key("a: 1\nb: 2\n", "a", "x/y") == "a: x/y\nb: 2\n"
    assert set_top_key("a: 1\nb: 2\n", "c", True, after="a") == "a: 1\nc: true\nb: 2\n"
    with pytest.raises(ValueError, match="2 top-level 'a'"):
        set_top_key("a: 1\na: 2\n", "a", 3)
    with pytest.raises(ValueError, match="nowhere"):
        set_top_key("a: 1\n", "c", 3, after="z")


def test_the_port_is_kept_only_when_the_user_chose_it(base):
    assert not user_set_port(base)
    assert user_set_port(replace(base, overrides=base.overrides + ("job.sched_port=9000",)))


def _ckpt(rank, name, mtime, step, host="h"):
    return SavedCheckpoint(host, rank, name, mtime, step)


def test_resume_point_is_the_newest_step_every_rank_saved():
    saved = [_ckpt(0, "a-1_2.ckpt", 1, 2), _ckpt(0, "a-1_4.ckpt", 2, 4), _ckpt(0, "a-1_6.ckpt", 3, 6),
             _ckpt(1, "b-1_2.ckpt", 1, 2), _ckpt(1, "b-1_4.ckpt", 2, 4, host="h2"), _ckpt(1, "bad.ckpt", 9, None)]  # fmt: skip
    point = choose(saved, 2)
    assert point.step == 4 and point.files == ((0, "h", "a-1_4.ckpt"), (1, "h2", "b-1_4.ckpt"))
    # after a resume the names restart (a_1-1_2 saved at step 6): the step inside the file decides
    again = saved + [_ckpt(0, "a_1-1_2.ckpt", 5, 6), _ckpt(1, "b_1-1_2.ckpt", 5, 6)]
    assert choose(again, 2).files == (
        (0, "h", "a_1-1_2.ckpt"),
        (1, "h", "b_1-1_2.ckpt"),
    )  # newer copy of step 6
    assert choose(saved[:3], 2) is None and choose([], 1) is None


def _varint(n: int) -> bytes:
    out = b""
    while True:
        out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return out


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _record(tag: str, kind: str, content: bytes, dims=()) -> bytes:
    tensor = (
        b"".join(_varint(1 << 3) + _varint(d) for d in dims) + _field(2, kind.encode()) + _field(3, content)
    )
    return _field(1, _field(1, tag.encode()) + _field(2, tensor))


def test_the_step_is_read_from_inside_mindspore_checkpoint_files(tmp_path):
    folder = tmp_path / "out" / "checkpoint" / "rank_0"
    folder.mkdir(parents=True)
    weights = _record("transformer.w", "Float32", b"\0" * 40000, dims=(100, 100))
    (folder / "x_rank_0_1-1_2.ckpt").write_bytes(weights + _record("epoch_num", "Int64", struct.pack("<q", 1))
                                                  + _record("step_num", "Int64", struct.pack("<q", 52)))  # fmt: skip
    (folder / "old-1_9.ckpt").write_bytes(
        _record("global_step", "Int32", struct.pack("<i", 9)) + b"crc_num\0\0"
    )
    (folder / "broken-1_3.ckpt").write_bytes(b"\x0a\xff\xff")
    t = LocalTransport("127.0.0.1")
    found = {c.name: c.step for c in list_saved(t, sys.executable, str(tmp_path / "out"), [0, 1])}
    assert found == {"x_rank_0_1-1_2.ckpt": 52, "old-1_9.ckpt": 9, "broken-1_3.ckpt": None}
    assert (
        prepare(t, sys.executable, str(tmp_path / "out"), "resume/attempt-2", {0: "x_rank_0_1-1_2.ckpt"}) == 1
    )
    linked = list((tmp_path / "out" / "resume" / "attempt-2" / "rank_0").iterdir())
    assert [p.name for p in linked] == ["x_rank_0_1-1_2.ckpt"] and linked[0].stat().st_nlink == 2
    other = tmp_path / "out" / "checkpoint" / "rank_3"  # a node without rank 0: its file stands in there
    other.mkdir()
    (other / "x_rank_3-1_2.ckpt").write_bytes(b"3")
    assert (
        prepare(t, sys.executable, str(tmp_path / "out"), "resume/attempt-3", {3: "x_rank_3-1_2.ckpt"}) == 2
    )
    got = sorted(
        p.relative_to(tmp_path / "out").as_posix()
        for p in (tmp_path / "out" / "resume" / "attempt-3").rglob("*.ckpt")
    )
    assert got == ["resume/attempt-3/rank_0/x_rank_3-1_2.ckpt", "resume/attempt-3/rank_3/x_rank_3-1_2.ckpt"]


def test_restart_decisions():
    two = Attempts(2, (Attempt(1, "launch", 0.0),))
    assert decide(two, JobState.RESTARTING, False).restart
    assert decide(two, JobState.RESTARTING, True).reason == "a stop was requested"
    assert not decide(two.begin(Attempt(2, "restart", 1.0)), JobState.RESTARTING, False).restart
    assert not decide(two, JobState.SUCCEEDED, False).restart


def test_attempts_round_trip_and_close_once():
    a = Attempts(3, (Attempt(1, "launch", 0.0),)).end("failed", 5.0, "rank-1 on h: exited 137")
    assert a.end("succeeded", 6.0).current.outcome == "failed" and a.left == 2
    b = a.begin(Attempt(2, "restart", 6.0, resumed_from=4, checkpoint="resume/attempt-2"))
    assert Attempts.from_json(b.to_json()) == b and b.left == 1


def test_only_a_resume_reopens_a_finished_job():
    assert not can_move(JobState.FAILED, JobState.RESTARTING)
    assert can_move(JobState.FAILED, JobState.RESTARTING, reopen=True)
    assert can_move(JobState.STOPPED, JobState.RESTARTING, reopen=True)
    assert not can_move(JobState.SUCCEEDED, JobState.RESTARTING, reopen=True)
    assert can_move(JobState.RUNNING, JobState.STOPPING) and can_move(JobState.STOPPING, JobState.RESTARTING)
    assert can_move(JobState.RESTARTING, JobState.STAGING) and can_move(JobState.RESTARTING, JobState.FAILED)


@pytest.fixture
def flow(tmp_path):
    from orchestrator.reshard import plan_flow
    from tests.plan.helpers import A2, make_inventory

    inv = make_inventory(A2, hosts=("10.0.0.1", "10.0.0.2"), train_dataset="/data/train.mindrecord",
                         load_checkpoint="/data/ckpt/full.ckpt")  # fmt: skip
    return inv, plan_flow(inv, "pretrain", (), tmp_path)


def test_offline_flow_runs_its_steps_in_order_on_the_strategy_jobs_output(flow):
    _, f = flow
    calls, lines = [], []
    ran = replace(f.strategy_plan, warnings=("bound to its job",))
    actions = FlowActions(
        strategy_run=lambda p: calls.append(("strategy", p is f.strategy_plan)) or ran,
        gather=lambda fl: calls.append(("gather", fl.strategy_plan is ran)),
        transform=lambda fl: calls.append(("transform", True)),
        push=lambda fl: calls.append(("push", True)),
    )
    final = run_offline(f, actions, lines.append)
    assert calls == [("strategy", True), ("gather", True), ("transform", True), ("push", True)]
    assert final is f.final_plan and final.job.auto_trans_ckpt is False
    assert [x.split(":")[0] for x in lines] == ["[1/5] strategy-run", "[2/5] gather", "[3/5] transform",
                                                "[4/5] push", "[5/5] launch"]  # fmt: skip


def test_offline_flow_stops_when_the_strategy_run_fails(flow):
    _, f = flow

    def fail(_plan):
        raise JobFailed("job x failed: rank-3 on 10.0.0.1: exited 1")

    never = FlowActions(fail, *(lambda fl: pytest.fail("must not run"),) * 3)
    with pytest.raises(JobFailed, match="step 1 \\(strategy run\\): job x failed"):
        run_offline(f, never, lambda _m: None)


def test_launch_goes_through_the_offline_flow_only_when_needed(flow, monkeypatch):
    from rich.console import Console

    from orchestrator.cli import cmd_launch
    from orchestrator.launch import offline
    from orchestrator.plan import make_plan

    inv, f = flow
    seen = []
    monkeypatch.setattr(offline, "default_actions", lambda nodes, run_job: FlowActions(
        lambda p: seen.append("strategy") or p, *(lambda fl, n=n: seen.append(n) for n in ("gather", "transform", "push"))))  # fmt: skip
    plan = make_plan(inv, "pretrain")
    console = Console(file=open("/dev/null", "w"))
    final = cmd_launch._offline_if_needed(plan, inv, "pretrain", (), None, lambda _m: None, console)
    assert seen == ["strategy", "gather", "transform", "push"]
    assert final.job.load_checkpoint.endswith("/transformed") and final.job.auto_trans_ckpt is False
    direct = make_plan(inv, "pretrain", ["job.auto_trans_ckpt=false"])
    assert (
        cmd_launch._offline_if_needed(direct, inv, "pretrain", (), None, lambda _m: None, console) is direct
    )
