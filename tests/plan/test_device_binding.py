"""Which NPU each rank binds, decided by MindFormers' own code from the rendered YAML, argv and env.

MindFormers 1.7 picks the device in ``MSContextOperator._handle_data`` (core/context/build_context.py):
the config's ``context.device_id`` if present, else ``DEVICE_ID``; in a dynamic cluster with
use_parallel it drops the device id (MindSpore then assigns it). Loading a YAML file fills a missing
``context.device_id`` with 0 (tools/register/template.py, ContextConfig), so DEVICE_ID alone never
decides. Each rank's config is loaded the way ``python -m iflytekspark.run`` loads it (the YAML with
its command line over it; export, like its task module, as predict), then ``_handle_data`` runs on it
with the rank's environment; ``__init__``, which would set MindSpore's context and initialise a
device, is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional
from unittest import mock

import pytest

from orchestrator.plan.model import NodePlan, RankLaunch
from orchestrator.plan.planner import make_plan
from tests.plan.helpers import A2, make_inventory

pytestmark = pytest.mark.mindspore


def _bound_device(node: NodePlan, launch: RankLaunch, folder: Path) -> Optional[int]:
    """The device_id MindFormers' context code takes for ``launch`` (None: left to MindSpore)."""
    from iflytekspark.run import parse_args
    from iflytekspark.tasks.setup import load_config
    from mindformers.core.context.build_context import MSContextOperator

    yaml_path = folder / node.host / node.yaml_name
    yaml_path.parent.mkdir(parents=True, exist_ok=True)
    yaml_path.write_text(node.yaml_text)
    args = list(launch.argv[3:])  # after `<python> -m iflytekspark.run`
    args[args.index("--config") + 1] = str(yaml_path)
    env = dict(launch.env, LOG_MF_PATH=str(folder / "log"))  # MindFormers' logger writes there
    with mock.patch.dict(os.environ, env, clear=True):
        config = load_config(parse_args(args))
        if config.run_mode == "export":  # iflytekspark.tasks.export does this before init_context
            config.run_mode = "predict"
        operator = MSContextOperator.__new__(MSContextOperator)  # no __init__: no device initialised
        operator.config = config
        return operator._handle_data().get("device_id")


def test_every_rank_of_an_8_npu_a2_node_binds_its_own_device(tmp_path):
    plan = make_plan(make_inventory(A2, hosts=("10.0.0.1", "10.0.0.2")), "pretrain")
    for node in plan.nodes:
        bound = [_bound_device(node, x, tmp_path) for x in node.launches]
        assert bound == list(node.devices) == list(range(8)), (node.host, bound)


def test_a_single_device_run_binds_the_planned_device(tmp_path):
    from tests.plan.test_render import replace_devices

    inv = replace_devices(make_inventory(A2, devices=8), (5,))
    for task in ("predict", "export"):
        node = make_plan(inv, task).nodes[0]
        assert [_bound_device(node, x, tmp_path) for x in node.launches] == [5], task


def test_dynamic_cluster_leaves_the_device_to_mindspore(tmp_path):
    node = make_plan(make_inventory(A2, launch_mode="dynamic_cluster", ips=False), "pretrain").nodes[0]
    workers = [x for x in node.launches if x.role == "worker"]
    assert [_bound_device(node, x, tmp_path) for x in workers] == [None] * 8
