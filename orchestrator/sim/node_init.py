"""PID 1 of a simulated node (stdlib only; runs inside the node's fresh mount, UTS and PID namespaces).

Given the node's ``init.json``, it overlays the node's private layers onto /etc, /usr/local and /opt,
binds the node's own /home and /root, the cluster's shared files and the node Python (read-only), and
an empty folder over every controller path the node must not see; sets the hostname, starts sshd,
then reaps orphans and, five times a second, stamps and releases the NPU claims of ended processes
(the driver's release lag). SIGTERM kills every process of the node. Killing this process (SIGKILL
from the host) makes the kernel kill the whole node.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys


def _mount_overlays(overlays: list) -> None:
    for o in overlays:
        opts = "lowerdir={},upperdir={},workdir={}".format(o["target"], o["upper"], o["work"])
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, o["target"]], check=True)


def _bind(binds: list) -> None:
    """Bind each source over its target (when the target exists in the node), read-only if asked."""
    for b in binds:
        if os.path.exists(b["target"]):
            subprocess.run(["mount", "--bind", b["source"], b["target"]], check=True)
            if b.get("ro"):
                subprocess.run(["mount", "-o", "remount,bind,ro", b["target"]], check=True)


def _terminate(signum: int, frame: object) -> None:
    try:
        os.kill(-1, signal.SIGKILL)  # every process of this PID namespace but init
    finally:
        os._exit(0)


def _claims(conf: dict):
    """The NPU claim sweep of the fake tools (None when the node has none)."""
    if not conf:
        return None
    sys.path.insert(0, conf["tools"])
    try:
        import nodeconf
    except ImportError:
        return None
    lock = os.path.join(nodeconf.procs_dir(), ".lock")
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    os.close(os.open(lock, os.O_RDONLY | os.O_CREAT, 0o644))
    release = float(conf.get("release_s", nodeconf.DEFAULT_RELEASE_S))
    return lambda: nodeconf.sweep(release)


def _reap_forever(sweep) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        if sweep is not None:
            try:
                sweep()
            except Exception as exc:  # a broken claim file must not end the node
                sys.stdout.write(f"npu claim sweep: {exc!r}\n")
                sys.stdout.flush()
        signal.sigtimedwait([signal.SIGCHLD], 0.2 if sweep is not None else 5.0)


def main(conf_path: str) -> int:
    with open(conf_path) as f:
        conf = json.load(f)
    signal.signal(signal.SIGTERM, _terminate)
    _mount_overlays(conf["overlays"])
    _bind(conf.get("binds", []))
    os.chdir("/")  # the launcher's cwd may be a hidden controller folder
    socket.sethostname(conf["hostname"])
    for d in conf.get("mkdirs", []):
        os.makedirs(d, mode=0o755, exist_ok=True)
    sweep = _claims(conf.get("npu_claims"))
    subprocess.Popen(conf["sshd"], stdin=subprocess.DEVNULL, cwd="/")  # daemonizes; re-parented here
    sys.stdout.write("node {}: init ready\n".format(conf["hostname"]))
    sys.stdout.flush()
    _reap_forever(sweep)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
