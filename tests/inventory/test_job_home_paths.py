"""Job input paths in an inventory's ``job:`` section are controller paths: ``~`` is expanded."""

from __future__ import annotations

import os

from orchestrator.inventory import default_inventory, parse_inventory

TEXT = """cluster: {name: c, profile: cpu, workdir: /w, python: /usr/bin/python3}
job:
  train_dataset: ~/data/train.mindrecord
  load_checkpoint: /abs/ckpt
nodes:
  - host: 127.0.0.1
    local: true
    devices: [0]
"""


def test_tilde_in_job_paths_is_expanded_and_absolute_paths_kept():
    job = parse_inventory(TEXT, "inv.yaml").job
    assert job.train_dataset == os.path.join(os.path.expanduser("~"), "data", "train.mindrecord")
    assert job.load_checkpoint == "/abs/ckpt" and job.tokenizer is None


def test_the_local_default_trains_on_the_demo_dataset():
    job = default_inventory().job
    assert job.train_dataset == os.path.expanduser("~/.orchestrate/demo/data/pretrain.mindrecord")
