"""A real Slurm for a simulated cluster: ``slurmctld`` on the host, one ``slurmd`` inside every node.

Debian's slurm-wlm 22.05 and munge (``scripts/system-packages.txt``). One ``munged`` serves the host and
every node (the nodes share the host's /run and see its /etc/munge through their /etc overlay). The
cluster's ``slurm.conf`` sits in its shared folder (``shared/slurm/slurm.conf``, read-only at
``/etc/orchestrate-sim/cluster/slurm`` in the nodes, linked from each node's own /etc/slurm, so ``srun``
and ``sbatch`` in a node need no ``SLURM_CONF``): ``slurmctld`` listens on the bridge address at a port
of its own per cluster, ``slurmd -N <node>`` runs in each node's namespaces with per-node spool, pid and
log paths (``%n``), and process tracking that needs no cgroups (``proctrack/linuxproc``,
``task/none``, ``select/linear``: a job holds whole nodes). Jobs run as the cluster's job user, whom
the controller host must know too (slurmctld resolves the uid), so ``up`` adds that account to the
host when missing. ``stop`` ends slurmctld and removes the spool; the nodes' slurmds end with the nodes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import zlib
from pathlib import Path

import psutil

from orchestrator.errors import SimError
from orchestrator.sim import netns, node, subnet
from orchestrator.sim.node_files import CLUSTER_MOUNT
from orchestrator.sim.state import ClusterState, cluster_dir

TOOLS = ("slurmctld", "slurmd", "srun", "sbatch", "squeue", "scontrol", "sinfo", "scancel", "munged")
MUNGE_SOCKET_DIR = Path("/run/munge")
SPOOL_ROOT = Path("/var/spool/osim-slurm")
NODE_CONF = f"{CLUSTER_MOUNT}/slurm/slurm.conf"
PARTITION = "npu"


def conf_path(name: str) -> Path:
    """Cluster ``name``'s slurm.conf on the host (``SLURM_CONF`` for commands run on the host)."""
    return cluster_dir(name) / "shared" / "slurm" / "slurm.conf"


def inventory_path(name: str) -> Path:
    """The Slurm inventory ``sim up --slurm`` writes beside the cluster's SSH inventory."""
    return cluster_dir(name) / "inventory-slurm.yaml"


def ctld_dir(name: str) -> Path:
    return cluster_dir(name) / "slurm"


def spool_dir(name: str) -> Path:
    return SPOOL_ROOT / name


def ctld_port(name: str) -> int:
    """slurmctld's port for cluster ``name``: one per cluster, so several clusters can run Slurm."""
    return 17000 + zlib.crc32(name.encode()) % 2000 * 2


def require_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None and not Path("/usr/sbin", t).exists()]
    if missing:
        raise SimError(
            f"Slurm for the simulated cluster needs {', '.join(missing)}: "
            "run `make setup` as root (or `apt-get install slurmd slurmctld slurm-client munge`)"
        )


def render_conf(st: ClusterState, controller: str, cpus: int) -> str:
    """slurm.conf for the cluster: the host as controller, every node with ``cpus`` CPUs."""
    spool = spool_dir(st.name)
    ctld = ctld_dir(st.name)
    lines = [
        f"ClusterName={st.name}",
        f"SlurmctldHost={controller}({subnet.host_address(st.subnet, 1)})",
        f"SlurmctldPort={ctld_port(st.name)}",
        "SlurmdPort=6818",
        "AuthType=auth/munge",
        "CryptoType=crypto/munge",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/linear",
        "SchedulerType=sched/backfill",
        "ReturnToService=2",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"StateSaveLocation={ctld}/state",
        f"SlurmctldPidFile={ctld}/slurmctld.pid",
        f"SlurmctldLogFile={ctld}/slurmctld.log",
        f"SlurmdSpoolDir={spool}/%n",
        f"SlurmdPidFile={spool}/slurmd-%n.pid",
        f"SlurmdLogFile={spool}/slurmd-%n.log",
        "JobCompType=jobcomp/none",
        "AccountingStorageType=accounting_storage/none",
        "MpiDefault=none",
        "KillWait=5",  # TERM, then KILL 5 s later: at a time limit, at scancel
        "InactiveLimit=0",
        "MinJobAge=600",  # finished jobs stay visible to scontrol for 10 minutes
        "SlurmdTimeout=30",
        "MessageTimeout=10",
    ]
    lines += [f"NodeName={n.hostname} NodeAddr={n.address} CPUs={cpus} State=UNKNOWN" for n in st.nodes]
    lines.append(f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP")
    return "\n".join(lines) + "\n"


def ensure_munged() -> None:
    """Start the host's munged (as the munge user) unless one already answers."""
    if subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
        return
    MUNGE_SOCKET_DIR.mkdir(mode=0o755, exist_ok=True)
    shutil.chown(MUNGE_SOCKET_DIR, "munge", "munge")
    if not Path("/etc/munge/munge.key").exists():
        subprocess.run(
            ["runuser", "-u", "munge", "--", "mungekey", "--create"], check=True, capture_output=True
        )
    subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True, capture_output=True)
    deadline = time.monotonic() + 10
    while subprocess.run(["munge", "-n"], capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise SimError("munged did not start: see `journalctl` or /var/log/munge/munged.log")
        time.sleep(0.1)


def ensure_host_user(user: str, uid: int, gid: int) -> None:
    """The job user on the host too (slurmctld builds each job's credential from the uid's account)."""
    import grp
    import pwd

    try:
        known = pwd.getpwnam(user)
    except KeyError:
        known = None
    if known is not None:
        if known.pw_uid != uid:
            raise SimError(
                f"host user {user!r} has uid {known.pw_uid}, the cluster's job user {uid}: remove it"
            )
        return
    try:
        grp.getgrgid(gid)
    except KeyError:
        subprocess.run(["groupadd", "-g", str(gid), user], check=True, capture_output=True)
    subprocess.run(["useradd", "-u", str(uid), "-g", str(gid), "-M", "-d", "/nonexistent", "-s",
                    "/usr/sbin/nologin", user], check=True, capture_output=True)  # fmt: skip


def _ctld_pid(name: str) -> int | None:
    try:
        pid = int((ctld_dir(name) / "slurmctld.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if netns.alive(pid) and netns.comm(pid) == "slurmctld" else None


def _slurm_env(st: ClusterState) -> dict[str, str]:
    return {**os.environ, "SLURM_CONF": str(conf_path(st.name))}


def idle_nodes(st: ClusterState) -> set[str]:
    """Nodes slurmctld lists as idle (``sinfo`` on the host)."""
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True,
                         env=_slurm_env(st), timeout=15)  # fmt: skip
    return {f[0] for f in (x.split() for x in out.stdout.splitlines()) if len(f) == 2 and f[1] == "idle"}


def start(st: ClusterState, timeout: float = 60.0) -> None:
    """Write slurm.conf, start slurmctld on the host and slurmd in every node; wait until all are idle."""
    require_tools()
    ensure_munged()
    ensure_host_user(st.user, st.uid, st.gid)
    conf = conf_path(st.name)
    conf.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    conf.write_text(render_conf(st, socket.gethostname(), os.cpu_count() or 1))
    conf.chmod(0o644)
    (ctld_dir(st.name) / "state").mkdir(mode=0o700, parents=True, exist_ok=True)
    spool_dir(st.name).mkdir(mode=0o755, parents=True, exist_ok=True)
    subprocess.run(["slurmctld", "-f", str(conf), "-i"], check=True, capture_output=True, timeout=30)
    for n in st.nodes:
        node.run(n, ["mkdir", "-p", "/etc/slurm"], check=True)
        node.run(n, ["ln", "-sfn", NODE_CONF, "/etc/slurm/slurm.conf"], check=True)
        node.run(n, ["slurmd", "-f", NODE_CONF, "-N", n.hostname], check=True, timeout=30)
    want = {n.hostname for n in st.nodes}
    deadline = time.monotonic() + timeout
    while (idle := idle_nodes(st)) != want:
        if time.monotonic() > deadline:
            log = ctld_dir(st.name) / "slurmctld.log"
            tail = log.read_text()[-800:] if log.exists() else "(no slurmctld log)"
            raise SimError(f"Slurm nodes not idle after {timeout:.0f} s: {sorted(want - idle)}\n{tail}")
        time.sleep(0.2)


def stop(name: str) -> list[str]:
    """End cluster ``name``'s slurmctld and remove its spool (the slurmds end with their nodes); found by
    name, so this also works after a crash lost the state file."""
    removed = []
    pids = {p for p in [_ctld_pid(name)] if p}
    marker = str(conf_path(name))
    for proc in psutil.process_iter(["cmdline"]):
        if marker in " ".join(proc.info["cmdline"] or ()):
            pids.add(proc.pid)
    if pids:
        netns.signal_all(sorted(pids), signal.SIGTERM)
        if left := netns.wait_gone(sorted(pids), timeout=5):
            netns.signal_all(left, signal.SIGKILL)
            netns.wait_gone(left)
        removed += [f"process {p} (slurmctld)" for p in sorted(pids)]
    if spool_dir(name).exists():
        shutil.rmtree(spool_dir(name), ignore_errors=True)
        removed.append(f"spool {spool_dir(name)}")
    return removed
