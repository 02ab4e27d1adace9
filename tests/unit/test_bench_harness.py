"""bench/harness.py: interleaving order, medians, ratios against the named baseline, the JSON document."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest


@pytest.fixture(scope="module")
def harness(repo_root):
    spec = importlib.util.spec_from_file_location("harness", repo_root / "bench" / "harness.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["harness"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("harness", None)


def test_cases_alternate_and_self_timings_are_kept(harness):
    order, times = [], {"base": iter([4.0, 6.0, 5.0]), "new": iter([1.0, 3.0, 2.0])}

    def case(name):
        return ("g", name), lambda: (order.append(name), harness.Seconds(next(times[name])))[1]

    samples = harness.interleave([case("base"), case("new")], repeats=3, warmup=0)
    assert order == ["base", "new", "new", "base", "base", "new"]
    assert samples == {("g", "base"): [4.0, 6.0, 5.0], ("g", "new"): [1.0, 3.0, 2.0]}


def test_warmup_is_not_recorded_and_one_call_may_measure_several_things(harness):
    calls = []

    def both():
        calls.append(1)
        return harness.Measured({("up", "2 nodes"): 1.0, ("down", "2 nodes"): 2.0})

    samples = harness.interleave([(("up", "2 nodes"), both)], repeats=2, warmup=1)
    assert len(calls) == 3 and samples == {("up", "2 nodes"): [1.0, 1.0], ("down", "2 nodes"): [2.0, 2.0]}


def test_report_gives_medians_ratios_and_one_json_document(harness, capsys):
    report = harness.Report("bench_x", "base", repeats=3, params={"size": 1})
    report.add({("g", "new"): [1.0, 3.0, 2.0], ("g", "base"): [4.0, 6.0, 5.0]})
    report.add({("h", "stock"): [1.0], ("h", "ours"): [4.0]}, baseline="stock")
    report.rate(("g", "new"), 10, "tokens")
    report.emit(as_json=True)
    doc = json.loads(capsys.readouterr().out)
    assert (doc["bench"], doc["baseline"], doc["repeats"]) == ("bench_x", "base", 3)
    rows = {(r["group"], r["case"]): r for r in doc["results"]}
    assert [(r["group"], r["case"]) for r in doc["results"]][:2] == [("g", "base"), ("g", "new")]
    new = rows[("g", "new")]
    assert new["median_s"] == 2.0 and new["speedup"] == 2.5 and new["samples_s"] == [1.0, 3.0, 2.0]
    assert new["rate"] == {"per_s": 5.0, "unit": "tokens/s"} and rows[("h", "ours")]["time_ratio"] == 4.0
    report.emit(as_json=False)
    text = capsys.readouterr().out
    assert "base (baseline)" in text and "2.50x" in text and "5 tokens/s" in text


def test_json_stdout_stays_clean_while_measuring(harness, capfd):
    with harness.stdout_to_stderr(True):
        print("noise from a library")
    print("{}")
    out, err = capfd.readouterr()
    assert out == "{}\n" and "noise from a library" in err
