"""The simulated Ascend cluster: network-namespace nodes with real sshd and fake Ascend tools.

Public API::

    from orchestrator.sim import up, down, status, open_cluster, faults
    cluster = up("demo", nodes=2)          # -> Cluster (nodes, key, known_hosts, inventory, hardware, user)
    up("a2", nodes=2, kind="atlas-800t-a2")  # Ascend mode: stand-in ranks on 8 NPUs a node
    cluster.exec("node1", "hostname")      # run inside a node without SSH (root; user=cluster.user)
    faults.link_down("demo", "node2")      # link-down/up, sshd-stop/start, freeze/thaw, kill/boot
    down("demo")                           # removes every trace, also after a crash

Needs root. A node is as strict as a real one: jobs run as a non-root user, the controller's checkout,
venv and /root are hidden, the model runs on the node's own cached Python (``node_python``), a fake
CANN install (``cann``) is there but sourced by nobody, and on Ascend kinds the stand-in rank
(``standin/``) checks what MindSpore, CANN and HCCL would. See ``state`` for names, ``node_files`` for
what a node is made of, ``node`` for running it.
"""

from __future__ import annotations

from orchestrator.sim import faults
from orchestrator.sim.cluster import Cluster, SimNode, open_cluster, status, up
from orchestrator.sim.teardown import all_names, down, leftovers

__all__ = ["Cluster", "SimNode", "all_names", "down", "faults", "leftovers", "open_cluster", "status", "up"]
