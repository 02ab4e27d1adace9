"""The job user of the simulated nodes: a non-root account with the same uid on every node.

Each node's private /etc gets the host's passwd and group plus one line each for the user, and a shadow
file with no password at all (key logins only); its
home (``/home/<user>``, private to the node: the node's /home is its own folder) holds the Debian
skeleton shell files and ``.ssh/authorized_keys`` with the cluster's client key. The skeleton
``.bashrc`` returns early in non-interactive shells, so an SSH command gets no environment from it,
as on a real node. Root keeps its key-only login for the simulation's own use; its home on a node is
an empty folder of the node (the host's /root is never visible).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from orchestrator.sim.state import JOB_USER

FIRST_ID = 2000
SKELETON = ("/etc/skel/.bashrc", "/etc/skel/.profile")
ROOT_KEYS = "/etc/orchestrate-sim/authorized_keys"  # sshd's second AuthorizedKeysFile, per user (%u)


def _ids(path: str, column: int = 2) -> set[int]:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return set()
    return {int(f[column]) for f in (x.split(":") for x in lines) if len(f) > column and f[column].isdigit()}


def choose_ids(user: str = JOB_USER) -> tuple[int, int]:
    """A uid and gid free on this machine (the first from 2000 that is free as both), or the ids of the
    host's own ``user`` account when it has one (added for Slurm, which needs the job user on the host)."""
    import pwd

    try:
        known = pwd.getpwnam(user)
        return known.pw_uid, known.pw_gid
    except KeyError:
        pass
    taken = _ids("/etc/passwd") | _ids("/etc/group") | _ids("/etc/passwd", 3)
    n = FIRST_ID
    while n in taken:
        n += 1
    return n, n


def _append(src: str, dest: Path, line: str) -> None:
    try:
        text = Path(src).read_text()
    except OSError:
        text = ""
    name = line.split(":", 1)[0] + ":"
    text = "".join(x + "\n" for x in text.splitlines() if not x.startswith(name)) + line + "\n"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)


def write_accounts(etc: Path, uid: int, gid: int, user: str = JOB_USER) -> None:
    """passwd, group and shadow of the node's /etc layer: the host's plus the job user."""
    _append(
        "/etc/passwd", etc / "passwd", f"{user}:x:{uid}:{gid}:orchestrate sim job user:/home/{user}:/bin/bash"
    )
    _append("/etc/group", etc / "group", f"{user}:x:{gid}:")
    names = [line.split(":", 1)[0] for line in (etc / "passwd").read_text().splitlines() if ":" in line]
    # Every account without a password ("*": key logins only, not locked); no host hash is copied.
    (etc / "shadow").write_text("".join(f"{name}:*:19700:0:99999:7:::\n" for name in names))
    (etc / "passwd").chmod(0o644)
    (etc / "group").chmod(0o644)
    (etc / "shadow").chmod(0o640)


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    os.chown(top, uid, gid)
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def make_home(homes: Path, public_key: str, uid: int, gid: int, user: str = JOB_USER) -> Path:
    """``<homes>/<user>`` (the node's /home/<user>) with the skeleton files and the client key."""
    home = homes / user
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    for src in SKELETON:
        if Path(src).exists():
            shutil.copyfile(src, home / Path(src).name)
    keys = home / ".ssh" / "authorized_keys"
    keys.write_text(public_key)
    keys.chmod(0o600)
    (home / ".ssh").chmod(0o700)
    home.chmod(0o750)
    homes.chmod(0o755)
    _chown_tree(home, uid, gid)
    return home


def root_keys(etc: Path, public_key: str) -> None:
    """Root's authorized key in the node's /etc (root-owned, read by sshd for user root only)."""
    folder = etc / ROOT_KEYS.removeprefix("/etc/")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    (folder / "root").write_text(public_key)
    (folder / "root").chmod(0o644)


def make_root_home(folder: Path, hostname: str) -> None:
    """The node's /root: empty shell start-up files (the host's pyenv init and the like stay out)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    for name in (".bashrc", ".profile"):
        (folder / name).write_text(f"# root's ~/{name} on simulated node {hostname}\n")


def chown(path: Path, uid: int, gid: int) -> None:
    _chown_tree(path, uid, gid)
