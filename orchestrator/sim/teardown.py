"""Remove a simulated cluster completely, from its state file and by name prefix (crash-proof).

Order: kill every process in the cluster's network namespaces (killing a node's init takes its whole PID
namespace, and with it the node's private mounts), delete the namespaces (which drops their veths),
delete the bridge and any host-side veth left, delete the state folder, then check nothing is left.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import psutil

from orchestrator.errors import SimError
from orchestrator.sim import netns, slurm, state
from orchestrator.sim.state import ClusterState


def _own_links(name: str) -> list[str]:
    h = state.name_hash(name)
    veth = f"osv{h}n"
    return [
        x
        for x in netns.link_names()
        if x == state.bridge_name(name) or (x.startswith(veth) and x[len(veth) :].isdigit())
    ]


def _own_netns(name: str) -> list[str]:
    st = ClusterState.load(name)
    recorded = {n.netns for n in st.nodes} if st else set()
    return sorted(recorded | set(filter(state.netns_re(name).match, netns.netns_list())))


def _own_processes(name: str) -> list[int]:
    """The cluster's processes: those in its network namespaces, and node inits, sshds and launchers
    found by the cluster folder in their command line (host-side clients such as ``ssh -i <key>`` are
    left alone: only processes outside our PID namespace, or ``unshare`` launchers, count)."""
    marker = str(state.cluster_dir(name)) + "/"
    own_pidns = os.readlink("/proc/self/ns/pid")
    found = set()
    for proc in psutil.process_iter(["cmdline", "name"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if marker not in cmdline:
            continue
        try:
            pidns = os.readlink(f"/proc/{proc.pid}/ns/pid")  # psutil has no namespace ids
        except OSError:
            continue
        ours = pidns != own_pidns or proc.info["name"] == "unshare"
        if ours and netns.alive(proc.pid):
            found.add(proc.pid)
    for ns in filter(state.netns_re(name).match, netns.netns_list()):
        found.update(netns.netns_pids(ns))
    return sorted(found)


def _own_mounts(name: str) -> list[str]:
    marker = str(state.cluster_dir(name)) + "/"
    text = Path("/proc/self/mountinfo").read_text()
    return [line for line in text.splitlines() if marker in line or f"/{state.NETNS_PREFIX}{name}.n" in line]


def leftovers(name: str) -> list[str]:
    """Everything of cluster ``name`` that still exists on this machine (empty once it is down)."""
    out = [f"netns {n}" for n in _own_netns(name)] + [f"link {x}" for x in _own_links(name)]
    out += [f"process {p} ({netns.comm(p)})" for p in _own_processes(name)]
    out += [f"mount {m.split()[4]}" for m in _own_mounts(name)]
    if state.cluster_dir(name).exists():
        out.append(f"state {state.cluster_dir(name)}")
    return out


def remove(name: str) -> list[str]:
    """Remove everything of cluster ``name`` (call under :func:`state.lock`); returns what went."""
    namespaces = _own_netns(name)
    for ns in namespaces:
        netns.kill_netns_processes(ns)
    stray = _own_processes(name)
    netns.signal_all(stray, signal.SIGKILL)
    netns.wait_gone(stray)
    for ns in namespaces:
        netns.ip("netns", "del", ns, check=False)
    links = _own_links(name)
    for link in links:
        netns.ip("link", "del", link, check=False)
    removed = [f"netns {n}" for n in namespaces] + [f"link {x}" for x in links]
    removed += slurm.stop(name)
    if state.cluster_dir(name).exists():
        shutil.rmtree(state.cluster_dir(name))
        removed.append(f"state {state.cluster_dir(name)}")
    if left := leftovers(name):
        raise SimError(f"cluster {name!r} could not be removed completely: {', '.join(left)}")
    return removed


def down(name: str = "sim") -> list[str]:
    """Remove every trace of cluster ``name``: processes, namespaces, links, mounts, state."""
    netns.require_root()
    state.check_name(name)
    with state.lock():
        return remove(name)


def all_names() -> list[str]:
    """Clusters known by a state folder or by a leftover network namespace."""
    prefix = state.NETNS_PREFIX
    from_ns = {ns[len(prefix) :].rsplit(".n", 1)[0] for ns in netns.netns_list() if ns.startswith(prefix)}
    return sorted(set(state.known_clusters()) | {n for n in from_ns if state.NAME_RE.match(n)})
