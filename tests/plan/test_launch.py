"""Launch material: environment per mode, argv per rank, ranks from the rank table's server_id order."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError, PlanError
from orchestrator.plan.planner import make_plan
from tests.plan.helpers import A2, A800, A800_SHORT, CPU, make_inventory

# String order puts 10.0.0.10 before 10.0.0.9; the inventory lists them the other way round.
HOSTS = ("10.0.0.9", "10.0.0.10")


def test_ranks_follow_server_id_string_order_not_inventory_order():
    plan = make_plan(make_inventory(A2, hosts=HOSTS), "pretrain")
    assert [n.host for n in plan.nodes] == ["10.0.0.10", "10.0.0.9"]
    assert plan.node("10.0.0.10").ranks == tuple(range(8))
    assert plan.node("10.0.0.9").ranks == tuple(range(8, 16))
    env = dict(plan.node("10.0.0.9").launches[0].env)
    assert (env["RANK_ID"], env["DEVICE_ID"], env["RANK_SIZE"]) == ("8", "0", "16")


def test_rank_table_mode_environment():
    plan = make_plan(
        make_inventory(A2, env=(("HCCL_IF_IP", "10.0.0.1"), ("HCCL_CONNECT_TIMEOUT", "999"))), "pretrain"
    )
    x = plan.nodes[0].launches[3]
    env = dict(x.env)
    job = "/opt/spark/jobs/test-pretrain"
    assert env["RANK_TABLE_FILE"] == f"{job}/rank_table.json"
    assert (env["RANK_ID"], env["DEVICE_ID"], env["RANK_SIZE"]) == ("3", "3", "8")
    assert env["HCCL_IF_IP"] == "10.0.0.1"
    assert env["HCCL_CONNECT_TIMEOUT"] == "999"  # the inventory's env wins over our defaults
    assert env["HCCL_EXEC_TIMEOUT"] == str(plan.timeouts.hccl_exec_s)
    assert env["ASCEND_PROCESS_LOG_PATH"] == f"{job}/output/log/rank_3/plog"
    assert not any(k.startswith("MS_") for k in env) and "ASCEND_RT_VISIBLE_DEVICES" not in env
    assert x.log_dir == f"{job}/output/log/rank_3" and x.cwd == job
    assert [k for k, _ in x.env] == sorted(env)


def test_argv_of_a_rank():
    inv = make_inventory(A2, train_dataset="/data/wiki.mindrecord", load_checkpoint="/ckpt/13b")
    x = make_plan(inv, "pretrain").nodes[0].launches[0]
    job = "/opt/spark/jobs/test-pretrain"
    assert x.argv == (
        "/usr/bin/python3",
        "-m",
        "iflytekspark.run",
        "--config",
        f"{job}/config/pretrain.yaml",
        "--run_mode",
        "train",
        "--use_parallel",
        "True",
        "--train_dataset",
        f"{job}/inputs/train_dataset/wiki.mindrecord",
        "--load_checkpoint",
        f"{job}/inputs/load_checkpoint/13b",
        "--device_id",
        "0",
    )


def test_single_device_predict_argv():
    inv = make_inventory(A2, devices=1, load_checkpoint="/shared/ckpt", shared_paths=("/shared",))
    x = (
        make_plan(inv, "predict", ["job.predict_data=[hello##hi]", "job.predict_batch=2"])
        .nodes[0]
        .launches[0]
    )
    assert x.argv[4:] == (
        "/opt/spark/jobs/test-predict/config/predict.yaml",
        "--run_mode",
        "predict",
        "--use_parallel",
        "False",
        "--load_checkpoint",
        "/shared/ckpt",
        "--predict_data",
        "[hello##hi]",
        "--predict_length",
        "512",
        "--predict_batch",
        "2",
        "--device_id",
        "0",
    )


def test_dynamic_cluster_environment_and_scheduler_on_rank_0_node():
    inv = make_inventory(A800, hosts=HOSTS, launch_mode="dynamic_cluster", ips=False, overrides=A800_SHORT)
    plan = make_plan(inv, "pretrain")
    first, second = plan.nodes
    assert plan.scheduler_host == first.host == "10.0.0.10"
    assert first.launches[0] == plan.scheduler and all(x.role == "worker" for x in second.launches)
    sched = dict(first.launches[0].env)
    assert sched["MS_ROLE"] == "MS_SCHED" and "MS_NODE_ID" not in sched
    worker = dict(second.launches[2].env)
    assert worker["MS_ROLE"] == "MS_WORKER" and worker["MS_NODE_ID"] == "10" and worker["DEVICE_ID"] == "2"
    for env in (sched, worker):
        assert (env["MS_SCHED_HOST"], env["MS_SCHED_PORT"], env["MS_WORKER_NUM"]) == (
            "10.0.0.10",
            "8118",
            "16",
        )
        assert env["MS_TOPO_TIMEOUT"] == str(plan.timeouts.topo_s)
        assert "RANK_TABLE_FILE" not in env


def test_cpu_uses_dynamic_cluster_with_rank_slots():
    inv = make_inventory(CPU, hosts=("127.0.0.2", "127.0.0.1"), devices=2, ips=False, model="tiny")
    plan = make_plan(inv, "pretrain", ["job.sched_port=9000"])
    assert plan.launch_mode == "dynamic_cluster" and plan.scheduler_host == "127.0.0.1"
    assert plan.node("127.0.0.2").ranks == (2, 3) and plan.node("127.0.0.2").devices == (0, 1)
    env = dict(plan.node("127.0.0.2").launches[1].env)
    assert env["MS_NODE_ID"] == "3" and env["MS_SCHED_PORT"] == "9000" and "DEVICE_ID" not in env
    assert not any(k.startswith(("HCCL_", "ASCEND_")) for k in env)
    assert '"server_id": "127.0.0.1"' in plan.rank_table_text


def test_rank_table_mode_needs_device_ips():
    with pytest.raises(InputError, match="device IPs are unknown"):
        make_plan(make_inventory(A2, ips=False), "pretrain")


def test_rank_table_mode_on_cpu_is_refused():
    inv = make_inventory(CPU, devices=2, ips=False, model="tiny", launch_mode="rank_table")
    with pytest.raises(PlanError, match="must be dynamic_cluster"):
        make_plan(inv, "pretrain")


def test_bad_device_ips_are_refused_by_the_rank_table_checks():
    inv = make_inventory(A2)
    node = inv.nodes[0]
    bad = node.device_ips[:7] + (node.device_ips[0],)  # a duplicate device IP
    inv = inv.__class__(
        inv.source, inv.cluster, (node.__class__(**{**node.__dict__, "device_ips": bad}),), inv.job
    )
    with pytest.raises(InputError):
        make_plan(inv, "pretrain")


def test_timeouts_policy_is_consistent():
    for inv, task in (
        (make_inventory(A2), "pretrain"),
        (make_inventory(A800, hosts=HOSTS, overrides=A800_SHORT), "pretrain"),
        (make_inventory(CPU, devices=2, ips=False, model="tiny"), "predict"),
    ):
        t = make_plan(inv, task).timeouts
        assert t.problems() == []
        assert t.hccl_connect_s < t.topo_s and t.failure_detect_s < t.hccl_connect_s
        assert t.failure_detect_s * 3 <= t.hccl_exec_s and t.heartbeat_s * 4 <= t.failure_detect_s
        assert t.hccl_exec_s >= 1836
    a800 = make_plan(make_inventory(A800, hosts=HOSTS, overrides=A800_SHORT), "pretrain").timeouts
    assert a800.hccl_exec_s % 68 == 0


def test_discovery_fills_device_ips_and_hostnames():
    from orchestrator.discover.model import DeviceState, Discovery, NodeDiscovery
    from tests.plan.helpers import device_ip

    inv = make_inventory(A2, hosts=HOSTS, ips=False)
    found = Discovery(
        nodes=tuple(
            NodeDiscovery(host=h, hostname=f"spark-{i}", npu_smi="/usr/local/bin/npu-smi",
                          devices=tuple(DeviceState(d, "910B2", "OK", ip=device_ip(A2, i, d)) for d in range(8)))
            for i, h in enumerate(HOSTS)
        )
    )  # fmt: skip
    plan = make_plan(inv, "pretrain", (), found)
    assert plan.node("10.0.0.9").name == "spark-0" and plan.launch_mode == "rank_table"
    assert '"device_ip": "192.168.1.9"' in plan.node("10.0.0.10").rank_table_text


def test_rank_table_mode_refuses_a_hostname_as_server_id():
    inv = make_inventory(A2, hosts=("a2-node-1", "10.0.0.2"))
    with pytest.raises(InputError) as info:
        make_plan(inv, "pretrain")
    (problem,) = info.value.problems
    assert problem.field == "nodes[0].host" and "needs the node's IP address as server_id" in problem.message
    assert "write the node's IP address in `host`" in problem.fix and "name: a2-node-1" in problem.fix
    # a dynamic cluster (CPU, or launch_mode: dynamic_cluster) has no rank table: hostnames are fine
    make_plan(
        make_inventory(A2, hosts=("a2-node-1", "10.0.0.2"), launch_mode="dynamic_cluster", ips=False),
        "pretrain",
    )
    make_plan(make_inventory(CPU, hosts=("h1", "h2"), devices=2, ips=False, model="tiny"), "pretrain")
