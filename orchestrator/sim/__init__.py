"""The simulated Ascend cluster: network-namespace nodes with real sshd and fake Ascend tools.

Public API::

    from orchestrator.sim import up, down, status, open_cluster, faults
    cluster = up("demo", nodes=2)          # -> Cluster (nodes, key, known_hosts, inventory, hardware)
    cluster.exec("node1", "hostname")      # run inside a node without SSH
    faults.link_down("demo", "node2")      # link-down/up, sshd-stop/start, freeze/thaw, kill/boot
    down("demo")                           # removes every trace, also after a crash

Needs root. See ``state`` for names and on-disk layout, ``node`` for what a node is made of.
"""

from __future__ import annotations

from orchestrator.sim import faults
from orchestrator.sim.cluster import Cluster, SimNode, open_cluster, status, up
from orchestrator.sim.teardown import all_names, down, leftovers

__all__ = ["Cluster", "SimNode", "all_names", "down", "faults", "leftovers", "open_cluster", "status", "up"]
