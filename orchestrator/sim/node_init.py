"""PID 1 of a simulated node (stdlib only; runs inside the node's fresh mount, UTS and PID namespaces).

Given the node's ``init.json``, it overlays the node's private layers onto /etc, /usr/local and /opt,
sets the hostname, starts sshd, then reaps orphans forever. SIGTERM kills every process of the node.
Killing this process (SIGKILL from the host) makes the kernel kill the whole node.
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


def _bind_files(binds: list) -> None:
    for b in binds:
        if os.path.exists(b["target"]):
            subprocess.run(["mount", "--bind", b["source"], b["target"]], check=True)


def _terminate(signum: int, frame: object) -> None:
    try:
        os.kill(-1, signal.SIGKILL)  # every process of this PID namespace but init
    finally:
        os._exit(0)


def _reap_forever() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        signal.sigtimedwait([signal.SIGCHLD], 5.0)


def main(conf_path: str) -> int:
    with open(conf_path) as f:
        conf = json.load(f)
    signal.signal(signal.SIGTERM, _terminate)
    _mount_overlays(conf["overlays"])
    _bind_files(conf.get("binds", []))
    socket.sethostname(conf["hostname"])
    for d in conf.get("mkdirs", []):
        os.makedirs(d, mode=0o755, exist_ok=True)
    subprocess.Popen(conf["sshd"], stdin=subprocess.DEVNULL)  # daemonizes; its child is re-parented here
    sys.stdout.write("node {}: init ready\n".format(conf["hostname"]))
    sys.stdout.flush()
    _reap_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
