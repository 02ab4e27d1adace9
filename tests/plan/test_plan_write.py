"""Writing the plan folder: plan.json's own writer gives json.dumps' bytes, and a new plan takes an
earlier one's place whole (permissions kept, nothing left beside it, the old plan intact on failure)."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from orchestrator.plan import folder_write
from orchestrator.plan.plan_io import load_plan, plan_json, write_plan
from orchestrator.plan.planner import make_plan
from tests.plan.helpers import A2, A800, A800_SHORT, CPU, make_inventory


@pytest.mark.parametrize(
    "inv, task, sets",
    [
        (
            make_inventory(A2, hosts=("10.0.0.1", "10.0.0.2"), load_checkpoint="/c"),
            "pretrain",
            ["parallel.mp=2", "parallel.pp=2", "parallel.micro_batch_num=4"],
        ),
        (make_inventory(A800, hosts=("10.0.0.9", "10.0.0.10"), overrides=A800_SHORT), "predict", []),
        (make_inventory(CPU, hosts=("h1", "h2"), devices=2, ips=False, model="tiny"), "lora", []),
    ],
)
def test_plan_json_is_json_dumps_of_the_plan(inv, task, sets):
    plan = make_plan(inv, task, sets)
    expected = json.dumps(dataclasses.asdict(plan), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert plan_json(plan) == expected


def _plan(hosts=("10.0.0.1", "10.0.0.2")):
    return make_plan(make_inventory(A2, hosts=hosts), "pretrain")


def test_a_new_plan_replaces_the_old_whole_and_keeps_the_folder_private(tmp_path):
    out = tmp_path / "p"
    out.mkdir(mode=0o700)
    out.chmod(0o700)
    write_plan(_plan(), out)
    write_plan(_plan(("10.0.0.1",)), out)
    assert out.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # no temporary folder left
    assert not (out / "nodes" / "10.0.0.2").exists() and load_plan(out).world_size == 8
    assert (out / "nodes/10.0.0.1/env_rank_0.sh").stat().st_mode & 0o777 == 0o600


def test_a_failed_write_leaves_the_earlier_plan_as_it_was(tmp_path, monkeypatch):
    out = tmp_path / "p"
    write_plan(_plan(), out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real_write = os.write
    count = [0]

    def failing(fd, data):
        count[0] += 1
        if count[0] > 5:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(folder_write.os, "write", failing)
    with pytest.raises(OSError, match="No space"):
        write_plan(_plan(("10.0.0.1",)), out)
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_without_an_exchange_two_renames_swap_the_folders(tmp_path, monkeypatch):
    out = tmp_path / "p"
    write_plan(_plan(), out)
    monkeypatch.setattr(folder_write, "_exchange", lambda a, b: False)
    write_plan(_plan(("10.0.0.1",)), out)
    assert not (out / "nodes" / "10.0.0.2").exists() and load_plan(out).world_size == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_a_folder_that_cannot_be_renamed_is_filled_in_place(tmp_path, monkeypatch):
    out = tmp_path / "p"
    write_plan(_plan(), out)
    real_rename = type(out).rename

    def no_rename_of_out(self, target):
        if self == out:
            raise OSError(16, "Device or resource busy")
        return real_rename(self, target)

    monkeypatch.setattr(type(out), "rename", no_rename_of_out)
    monkeypatch.setattr(folder_write, "_exchange", lambda a, b: False)  # as where Linux's is missing
    write_plan(_plan(("10.0.0.1",)), out)
    assert not (out / "nodes" / "10.0.0.2").exists() and (out / "nodes/10.0.0.1/commands.sh").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_the_current_folder_as_plan_folder_is_filled_in_place(tmp_path, monkeypatch):
    out = tmp_path / "p"
    write_plan(_plan(), out)
    monkeypatch.chdir(out)
    inode = out.stat().st_ino
    write_plan(_plan(("10.0.0.1",)), ".")
    assert out.stat().st_ino == inode and os.path.samefile(os.getcwd(), out)  # still our folder
    assert load_plan(out).world_size == 8 and not (out / "nodes" / "10.0.0.2").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
