"""--set key=value: parsing, routing, application to the YAML tree, and their effect on a plan."""

from __future__ import annotations

import pytest
import yaml

from orchestrator.errors import InputError
from orchestrator.plan.overrides import apply_to_tree, by_section, parse_override, parse_overrides
from orchestrator.plan.planner import make_plan
from tests.plan.helpers import CPU, make_inventory


@pytest.mark.parametrize(
    "text, key, value, section",
    [
        ("parallel.dp=2", "parallel.dp", 2, "parallel"),
        ("model.num_layers=4", "model.num_layers", 4, "model"),
        ("job.resume=true", "job.resume", True, "job"),
        ("optimizer.learning_rate=1.e-4", "optimizer.learning_rate", 1e-4, "yaml"),
        ("job.learning_rate=1e-4", "job.learning_rate", 1e-4, "job"),
        ("context.max_device_memory=30GB", "context.max_device_memory", "30GB", "yaml"),
        ("seed= 7", "seed", 7, "yaml"),
        ("job.tokenizer='a=b'", "job.tokenizer", "a=b", "job"),
        ("load_checkpoint=", "load_checkpoint", "", "yaml"),
        ("job.predict_data=[q1##q2]", "job.predict_data", "[q1##q2]", "job"),
        ("x={a: 1}", "x", "{a: 1}", "yaml"),
    ],
)
def test_parse_routes_by_prefix_and_parses_yaml_scalars(text, key, value, section):
    o = parse_override(text)
    assert (o.key, o.value, o.section) == (key, value, section)


@pytest.mark.parametrize("text", ["novalue", "=3", "a..b=1", "parallel=2", "x='unclosed"])
def test_malformed_overrides_are_input_errors(text):
    with pytest.raises(InputError):
        parse_override(text)


def test_inventory_overrides_come_first_and_the_command_line_wins():
    parsed = parse_overrides((("parallel.dp", "1"), ("job.epochs", "2")), ["parallel.dp=2"])
    assert by_section(parsed, "parallel") == {"dp": 2}
    assert by_section(parsed, "job") == {"epochs": 2}
    assert parsed[0].origin == "inventory job.set"


def test_apply_to_tree_sets_nested_keys_and_list_items():
    tree = {"runner_config": {"epochs": 1}, "callbacks": [{"type": "A"}, {"type": "B", "n": 1}]}
    apply_to_tree(
        tree,
        [
            parse_override("runner_config.epochs=5"),
            parse_override("runner_config.new.deep=x"),
            parse_override("callbacks.1.n=3"),
        ],
    )
    assert tree == {
        "runner_config": {"epochs": 5, "new": {"deep": "x"}},
        "callbacks": [{"type": "A"}, {"type": "B", "n": 3}],
    }


def test_apply_to_tree_reports_every_bad_path():
    tree = {"runner_config": {"epochs": 1}, "callbacks": [{"type": "A"}]}
    bad = [parse_override(t) for t in ("nope.x=1", "callbacks.5.n=1", "runner_config.epochs.x=1")]
    with pytest.raises(InputError) as err:
        apply_to_tree(tree, bad)
    assert len(err.value.problems) == 3
    assert "unknown top-level key 'nope'" in str(err.value)


def _tree(plan):
    return yaml.safe_load(plan.nodes[0].yaml_text)


def test_overrides_reach_strategy_model_job_and_yaml():
    inv = make_inventory(
        CPU,
        hosts=("127.0.0.1",),
        devices=2,
        ips=False,
        model="tiny",
        overrides=(("runner_config.epochs", "2"),),
    )
    plan = make_plan(
        inv,
        "finetune",
        [
            "model.num_layers=4",
            "model.loss_mask_alignment=reference",
            "job.save_checkpoint_steps=50",
            "runner_config.sink_size=7",
            "parallel.batch_size=2",
        ],
    )
    tree = _tree(plan)
    assert plan.model.num_layers == 4 and tree["model"]["model_config"]["num_layers"] == 4
    assert tree["model"]["model_config"]["loss_mask_alignment"] == "reference"
    assert tree["callbacks"][1]["save_checkpoint_steps"] == 50
    assert tree["runner_config"] == {"epochs": 2, "batch_size": 2, "sink_mode": False, "sink_size": 7}
    assert plan.overrides[0] == "runner_config.epochs=2"
    assert plan.nodes[0].yaml_text.splitlines()[1].startswith("# with --set")


def test_unknown_job_option_and_top_level_key_are_refused():
    inv = make_inventory(CPU, hosts=("127.0.0.1",), devices=2, ips=False, model="tiny")
    with pytest.raises(InputError, match="unknown job option"):
        make_plan(inv, "pretrain", ["job.nothing=1"])
    with pytest.raises(InputError, match="unknown top-level key 'bogus'"):
        make_plan(inv, "pretrain", ["bogus.x=1"])
    with pytest.raises(InputError, match="job.epochs"):
        make_plan(inv, "pretrain", ["job.epochs=many"])


def test_an_empty_job_path_clears_the_inventory_default():
    inv = make_inventory(CPU, hosts=("127.0.0.1",), devices=2, ips=False, model="tiny", load_checkpoint="/c")
    assert make_plan(inv, "pretrain").job.load_checkpoint == "/c"
    plan = make_plan(inv, "pretrain", ["job.load_checkpoint="])
    assert plan.job.load_checkpoint is None and _tree(plan)["load_checkpoint"] == ""
