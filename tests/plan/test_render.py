"""Template rendering: YAML scalars, StrictUndefined, errors pointing at the template line."""

from __future__ import annotations

import pytest
import yaml

from orchestrator.errors import PlanError
from orchestrator.inventory.profiles import TASKS
from orchestrator.plan.overrides import parse_override
from orchestrator.plan.planner import make_plan
from orchestrator.plan.render import render_text, render_yaml, yaml_scalar
from tests.plan.helpers import A2, A800, A800_SHORT, CPU, make_inventory


@pytest.mark.parametrize(
    "value",
    [
        3e-05,
        1e-08,
        0.0003,
        1.0,
        -2.5e10,
        300000,
        True,
        False,
        None,
        "58GB",
        "float16",
        "a: b",
        "q_proj|v_proj",
        "",
        "yes",
        "1.5",
        ["input_ids"],
    ],
)
def test_yaml_scalar_round_trips(value):
    assert yaml.safe_load(f"k: {yaml_scalar(value)}")["k"] == value


def _write(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    "files, context, where",
    [
        ({"t.j2": "a: 1\nb: 2\nc: {{ missing_value }}\n"}, {}, r"t\.j2:3: 'missing_value' is undefined"),
        (  # an undefined value in the parent template names the parent
            {
                "base.j2": "x: 1\n{% block b %}{% endblock %}\ny: {{ strategy.nothing }}\n",
                "t.j2": '{% extends "base.j2" %}{% block b %}z: 2{% endblock %}',
            },
            {"strategy": {}},
            r"base\.j2:3: .*nothing",
        ),
        ({"t.j2": "a: 1\n{% if %}\n"}, {}, r"t\.j2:2"),  # syntax error
    ],
)
def test_template_errors_name_the_template_line(tmp_path, files, context, where):
    for name, text in files.items():
        _write(tmp_path, name, text)
    with pytest.raises(PlanError, match=where):
        render_text("t.j2", context, tmp_path)


def test_rendered_text_that_is_not_yaml_is_refused_with_its_line(tmp_path):
    _write(tmp_path, "t.j2", "a: 1\nb: [unclosed\n")
    with pytest.raises(PlanError, match="rendered invalid YAML"):
        render_yaml("t.j2", {}, (), tmp_path)


def test_tree_overrides_are_applied_after_rendering(tmp_path):
    _write(tmp_path, "t.j2", "# head\na:\n  b: 1\n")
    text = render_yaml("t.j2", {}, [parse_override("a.b=2")], tmp_path)
    assert text.splitlines()[:2] == ["# head", "# with --set a.b"] and yaml.safe_load(text) == {"a": {"b": 2}}


@pytest.mark.parametrize("task", TASKS)
def test_every_task_renders_what_it_needs(task):
    inv = make_inventory(A800, hosts=("10.0.0.1", "10.0.0.2"), load_checkpoint="/c", overrides=A800_SHORT)
    plan = make_plan(inv, task)
    tree = yaml.safe_load(plan.nodes[1].yaml_text)
    cfg = tree["model"]["model_config"]
    assert tree["context"]["device_target"] == "Ascend" and tree["context"]["max_device_memory"] == "31GB"
    assert tree["parallel_config"]["model_parallel"] == plan.strategy.mp
    assert ("pet_config" in cfg) == task.endswith("lora")
    assert cfg["use_past"] == (task in ("predict", "predict_lora", "export"))
    assert ("train_dataset" in tree) == (task in ("pretrain", "finetune", "lora"))
    if task in ("pretrain", "finetune", "lora"):
        assert tree["auto_trans_ckpt"] is True and tree["runner_wrapper"]["scale_sense"]["type"] == (
            "DynamicLossScaleUpdateCell"
        )
        assert tree["callbacks"][1] == {
            "type": "CheckpointMonitor",
            "prefix": "iFlytekSpark_13b",
            "save_checkpoint_steps": 1000,
            "integrated_save": False,
            "async_save": False,
        }
    if task == "export":
        assert cfg["is_dynamic"] is False  # Atlas 800 exports static shapes


def test_cpu_yaml_is_data_parallel_fp32():
    plan = make_plan(make_inventory(CPU, devices=2, ips=False, model="tiny"), "pretrain")
    tree = yaml.safe_load(plan.nodes[0].yaml_text)
    assert tree["context"]["device_target"] == "CPU"
    assert tree["parallel"]["parallel_mode"] == 0 and tree["parallel"]["full_batch"] is False
    assert tree["parallel"]["enable_parallel_optimizer"] is False
    assert tree["model"]["model_config"]["compute_type"] == "float32"
    assert tree["runner_config"]["sink_mode"] is False


def test_a2_export_is_dynamic_and_the_node_yaml_binds_no_device():
    """The YAML is shared by the node's ranks: no context.device_id, each rank's own DEVICE_ID (and
    --device_id for a single-device run) decides (tests/plan/test_device_binding.py runs MindFormers')."""
    plan = make_plan(make_inventory(A2, devices=1), "export")
    assert yaml.safe_load(plan.nodes[0].yaml_text)["model"]["model_config"]["is_dynamic"] is True
    inv = make_inventory(A2, hosts=("10.0.0.1",), devices=8)
    node = replace_devices(inv, (4, 5, 6, 7))
    plan = make_plan(node, "predict")
    assert "device_id" not in yaml.safe_load(plan.nodes[0].yaml_text)["context"]
    assert [dict(x.env)["DEVICE_ID"] for x in plan.nodes[0].launches] == ["4", "5", "6", "7"]


def replace_devices(inv, devices):
    from dataclasses import replace

    from tests.plan.helpers import device_ip

    n = replace(inv.nodes[0], devices=devices, device_ips=tuple(device_ip(A2, 0, d) for d in devices))
    return replace(inv, nodes=(n,))


HOSTS = ("10.0.0.1", "node-1", "yes", "fe80::1", "10.0.0.10")


@pytest.mark.parametrize(
    "template, checked",
    [
        ("# node {{ host }}\na: {{ x | y }}\n", 2),  # host in a comment: one check per kind of host
        ("# node {{ host | y }}\na: {{ x | y }}\n", 2),  # the y filter quotes an address, not a name
        ("# node {{ host }}\nname: {{ host | y }}\n", 2 + len(HOSTS)),  # in a value: each on its own
        ("a: {{ x | y }}\n", 2),  # no host at all
        ("# node {{ host | upper }}\na: 1\n", len(HOSTS)),  # more than written: each on its own
        ("# node {{ host[:3] }} of {{ host | length }}\na: 1\n", len(HOSTS)),
    ],
)
def test_rendering_per_host_gives_each_hosts_own_rendering(tmp_path, monkeypatch, template, checked):
    from orchestrator.plan import render

    _write(tmp_path, "t.j2", template)
    calls = []
    parse = render.parse_rendered
    monkeypatch.setattr(render, "parse_rendered", lambda text, name: calls.append(text) or parse(text, name))
    out = render.render_yaml_per_host("t.j2", {"x": 1}, HOSTS, (), tmp_path)
    assert len(calls) == checked
    assert out == {h: render_yaml("t.j2", {"x": 1, "host": h}, (), tmp_path) for h in HOSTS}


def test_a_host_that_could_change_the_yaml_is_rendered_on_its_own(tmp_path):
    from orchestrator.plan.render import render_yaml_per_host

    _write(tmp_path, "t.j2", "# node {{ host }}\na: 1\n")
    odd = 'x"\nb: 2'
    out = render_yaml_per_host("t.j2", {}, ("10.0.0.1", odd), (), tmp_path)
    assert out[odd] == f"# node {odd}\na: 1\n" and yaml.safe_load(out[odd]) == {"b": 2, "a": 1}
