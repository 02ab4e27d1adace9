"""The Slurm backend's controller side: the login host, the allocation as an inventory, and what a
recorded job's allocation says (its state, why Slurm ended it, releasing it).

``allocated(inv, ...)`` holds nodes for a new job: it submits the allocation (or adopts
``slurm.job_id``), reads each node's address (and, on Ascend profiles, its NPUs) through job steps and
yields the inventory with those nodes, each carrying its Slurm route; the rest of the tool (plan,
stage, start, watch, stop, logs, collect-logs) then reaches them as job steps. On any error before the
job started, an allocation we submitted is cancelled.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from orchestrator.inventory.model import Inventory, NodeSpec
from orchestrator.jobs.events import append_event
from orchestrator.slurm import allocation, nodes
from orchestrator.slurm.jobinfo import SlurmJob
from orchestrator.slurm.settings import SlurmRoute
from orchestrator.transport.base import Transport
from orchestrator.transport.local import LocalTransport

Say = Callable[[str], None]


def login_transport(login: str, node_like: object) -> Transport:
    """This machine for ``local``, else an SSH connection to the login host (the cluster's ssh settings)."""
    if login == "local":
        return LocalTransport("local")
    from orchestrator.transport import SshOptions, SshTransport

    return SshTransport(login, SshOptions.of(node_like.ssh)).connect()  # type: ignore[attr-defined]


def work_dir(login: str, job_tag: str) -> str:
    """Where the allocation's script and the steps' output live on the login host."""
    if login == "local":
        from orchestrator.jobs.state import home

        return str(home() / "slurm" / job_tag)
    return f".orchestrate/slurm/{job_tag}"  # relative: in the login user's home


@contextmanager
def allocated(inv: Inventory, job_tag: str, say: Say, timeout: float = 600.0) -> Iterator[Inventory]:
    """``inv`` with the nodes of a running allocation (see the module docstring)."""
    s = inv.cluster.slurm
    assert s is not None, "not a Slurm inventory"
    login = login_transport(s.login, inv.cluster)
    where = work_dir(s.login, job_tag)  # made by the batch script's write when we submit
    per_node = nodes.devices_per_node(inv)
    say(f"slurm: asking for {s.nodes} node(s) ({per_node} device(s) each)" if not s.settings.job_id
        else f"slurm: using allocation {s.settings.job_id}")  # fmt: skip
    alloc = allocation.allocate(login, job_tag, s.nodes, per_node if inv.cluster.hardware.accelerator else 0,
                                s.settings, where, timeout)  # fmt: skip
    try:
        say(f"slurm: job {alloc.slurm_job} holds {', '.join(alloc.nodes)}")
        specs = nodes.node_specs(inv, alloc, nodes.addresses(login, alloc))
        if inv.cluster.hardware.accelerator:
            from orchestrator.transport import TransportPool

            with TransportPool() as pool:
                specs = nodes.with_discovery(specs, pool, per_node)
        yield dataclasses.replace(inv, nodes=tuple(specs))
    except BaseException:
        allocation.release(login, alloc)
        raise
    finally:
        login.close()


def route_of(job_nodes: tuple[NodeSpec, ...]) -> Optional[SlurmRoute]:
    """The Slurm route of a job's nodes (None: not a Slurm job)."""
    return job_nodes[0].slurm if job_nodes and job_nodes[0].slurm else None


def slurm_job(job_nodes: tuple[NodeSpec, ...]) -> Optional[SlurmJob]:
    """What Slurm says of the job's allocation now (None: not a Slurm job, or forgotten by Slurm)."""
    route = route_of(job_nodes)
    if route is None:
        return None
    login = login_transport(route.login, job_nodes[0])
    try:
        return allocation.show(login, route.slurm_job)
    finally:
        login.close()


def allocation_ended(job_nodes: tuple[NodeSpec, ...]) -> bool:
    """The job runs on a Slurm allocation that has ended (or that Slurm forgot); False off Slurm."""
    if route_of(job_nodes) is None:
        return False
    sj = slurm_job(job_nodes)
    return sj is None or sj.ended


def release(job_path, job_nodes: tuple[NodeSpec, ...]) -> None:
    """Cancel the allocation when we submitted it (the job has ended); record it in the job's events."""
    route = route_of(job_nodes)
    if route is None or not route.owned:
        return
    login = login_transport(route.login, job_nodes[0])
    try:
        allocation.release(login, allocation.Allocation(route.slurm_job, (), True))
    finally:
        login.close()
    append_event(job_path, "slurm-released", slurm_job=route.slurm_job)
