"""SlurmSettings: how a job asks Slurm for its nodes (the inventory's ``slurm:`` section)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from orchestrator.errors import InputError

_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$|^UNLIMITED$|^INFINITE$")
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass(frozen=True)
class SlurmSettings:
    """Partition, account, qos and time limit of the allocation; ``gres``: the site's GRES name for
    NPUs (``npu`` gives ``--gres=npu:<devices per node>``; empty when the site declares none);
    ``job_id``: run inside this existing allocation instead of submitting one."""

    partition: str = ""
    account: str = ""
    qos: str = ""
    time_limit: str = ""
    gres: str = ""
    job_id: Optional[str] = None
    exclusive: bool = True

    def check(self, where: str = "slurm") -> SlurmSettings:
        """Raise InputError naming the field and the fix for a value Slurm would refuse."""
        for field_name in ("partition", "account", "qos", "gres"):
            value = getattr(self, field_name)
            if value and not _NAME.match(value):
                raise InputError(
                    f"{where}.{field_name}: {value!r} is not a Slurm name (letters, digits, _.+-)"
                )
        if self.time_limit and not _TIME.match(self.time_limit):
            raise InputError(
                f"{where}.time_limit: {self.time_limit!r} is not a Slurm time: use MM, HH:MM:SS or D-HH:MM:SS"
            )
        if self.job_id is not None and not str(self.job_id).isdigit():
            raise InputError(f"{where}.job_id: {self.job_id!r} is not a Slurm job id (digits)")
        return self


@dataclass(frozen=True)
class SlurmInventory:
    """Where Slurm commands run (``login``: "local" or a host) and what to ask Slurm for."""

    login: str
    nodes: int
    settings: SlurmSettings
    devices: int = 0  # devices (NPUs; cpu: rank slots) per node; 0: the profile's count


@dataclass(frozen=True)
class SlurmRoute:
    """How the controller reaches a node held by Slurm: as steps of job ``slurm_job`` on Slurm node
    ``node``, from the login host ``login`` ("local": this machine; else a host reached with the node's
    ``ssh`` settings). ``owned``: we submitted the allocation (it ends with the job); else it is the
    user's (``slurm.job_id``) and is left running."""

    login: str
    slurm_job: str
    node: str
    owned: bool = True
