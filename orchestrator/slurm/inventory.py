"""The inventory's ``cluster.slurm`` section, read with the inventory's Checker (file, line, fix)::

cluster:
  scheduler: slurm            # ssh (default): the node list below | slurm: Slurm gives the nodes
  slurm:
    login: local              # where sbatch/srun run: local (this machine) or a host reached with
                              # cluster.ssh (the cluster's login node)
    nodes: 2                  # how many nodes to ask for (default: the length of `nodes:`, else 1)
    devices: 8                # NPUs (cpu: rank slots) used per node; default: the profile's count
    partition: npu            # the rest as sbatch takes them; all optional
    account: lab
    qos: normal
    time_limit: "12:00:00"    # MM | HH:MM:SS | D-HH:MM:SS
    gres: npu                 # the site's GRES name for NPUs: --gres=npu:<devices per node>
    job_id: 123456            # run inside this existing allocation instead of submitting one
    exclusive: true           # whole nodes (default)
"""

from __future__ import annotations

from typing import Optional

from orchestrator.errors import InputError
from orchestrator.inventory.fields import Checker
from orchestrator.inventory.located import child_path
from orchestrator.slurm.settings import SlurmInventory, SlurmSettings

KEYS = (
    "login",
    "nodes",
    "devices",
    "partition",
    "account",
    "qos",
    "time_limit",
    "gres",
    "job_id",
    "exclusive",
)
SCHEDULERS = ("ssh", "slurm")


def read(ck: Checker, raw: object, path: str, listed_nodes: int) -> Optional[SlurmInventory]:
    """The section at ``path`` (problems go to ``ck``); None when it has problems."""
    m = ck.mapping(raw, path, KEYS)
    before = len(ck.problems)
    login = ck.string(m, "login", path, "local") or "local"
    nodes = ck.integer(m, "nodes", path, listed_nodes or 1, 1, 4096) or 1
    if listed_nodes and nodes != listed_nodes and m.get("nodes") is not None:
        ck.add(child_path(path, "nodes"), f"{nodes} node(s) asked, {listed_nodes} listed under `nodes:`",
               "drop `slurm.nodes` (the node list decides) or the node list")  # fmt: skip
    job_id = m.get("job_id")
    settings = SlurmSettings(
        partition=ck.string(m, "partition", path, "") or "",
        account=ck.string(m, "account", path, "") or "",
        qos=ck.string(m, "qos", path, "") or "",
        time_limit=str(m["time_limit"]) if m.get("time_limit") is not None else "",
        gres=ck.string(m, "gres", path, "") or "",
        job_id=str(job_id) if job_id is not None else None,
        exclusive=ck.boolean(m, "exclusive", path, True),
    )
    try:
        settings.check(path)
    except InputError as exc:
        field, _, message = str(exc).partition(": ")
        ck.add(field, message, "see the `slurm:` keys in inventories/README.md")
    devices = ck.integer(m, "devices", path, 0, 1, 64) or 0
    return SlurmInventory(login, nodes, settings, devices) if len(ck.problems) == before else None
