"""The Python the simulated nodes run the model package with: their own, prepared once per machine.

A venv of the system Python (``python3 -m venv``) with the model-side pins of ``pyproject.toml`` (the
one place pins live: the ``model`` extra, plus the base pins the model package imports), built by pip
under ``/var/lib/orchestrate-sim/.node-python/<key>/`` where ``<key>`` hashes the pins and the Python
version. It is built inside a private mount namespace at the path the nodes see it under
(``/usr/local/python3.X``, where Ascend images keep their Python), so its scripts and ``pyvenv.cfg``
name that path; every node then mounts it there read-only. ``sim up`` builds it when missing (about
two minutes with a network, once); ``sim down`` leaves it. The controller's checkout and venv play no
part: a node sees only what this env holds plus what the orchestrator ships.

The env also carries ``orchestrate_sim_node.pth``: it puts the node's own simulation hooks
(``/usr/local/lib/orchestrate-sim/python``, written by ``sim up``) on ``sys.path`` and imports
``osim_node_hook``, which on an Ascend-mode node turns ``python -m iflytekspark.run`` on an Ascend YAML
into the stand-in rank (:mod:`orchestrator.sim.standin`). Elsewhere the hook does nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from orchestrator.errors import SimError
from orchestrator.sim import state

FORMAT = "1"  # bump when the env's layout or its .pth change
CACHE = state.ROOT / ".node-python"
MODEL_BASE_PINS = ("sentencepiece", "pyyaml", "numpy")  # base pins the model package imports
NODE_HOOKS = "/usr/local/lib/orchestrate-sim/python"
PTH = (
    f"{NODE_HOOKS}\n"
    'import importlib.util as _u; _u.find_spec("osim_node_hook") and __import__("osim_node_hook")\n'
)
Report = Callable[[str], None]


@dataclass(frozen=True)
class NodePython:
    """A ready env: ``host_dir`` on this machine, mounted at ``node_dir`` in every node."""

    key: str
    host_dir: Path
    node_dir: str

    @property
    def python(self) -> str:
        """The interpreter a node runs (the inventory's ``python``)."""
        return f"{self.node_dir}/bin/python"


def _pyproject() -> Optional[Path]:
    path = Path(__file__).resolve().parents[2] / "pyproject.toml"
    return path if path.is_file() else None


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def pins() -> tuple[str, ...]:
    """The model-side requirements, read from pyproject.toml (or the installed package's metadata)."""
    path = _pyproject()
    if path is not None:
        import tomllib

        project = tomllib.loads(path.read_text())["project"]
        model, base = project["optional-dependencies"]["model"], project["dependencies"]
    else:
        from importlib.metadata import requires

        reqs = requires("orchestrate") or []
        model = [r.split(";")[0].strip() for r in reqs if 'extra == "model"' in r]
        base = [r for r in reqs if ";" not in r]
    picked = list(model) + [r for r in base if _name(r) in MODEL_BASE_PINS]
    return tuple(sorted(r.strip() for r in picked))


def base_python() -> tuple[str, str]:
    """(system Python 3 executable, its "3.X" version) that the env is made from."""
    for exe in ("/usr/bin/python3.11", "/usr/bin/python3"):
        if Path(exe).exists():
            out = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, check=True)  # fmt: skip
            return exe, out.stdout.strip()
    raise SimError("no system Python 3 (/usr/bin/python3): install python3 and python3-venv")


def key_of(requirements: tuple[str, ...], version: str) -> str:
    text = json.dumps({"format": FORMAT, "python": version, "pins": list(requirements)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ready(path: Path) -> bool:
    return (path / ".complete").is_file()


def _build(exe: str, version: str, requirements: tuple[str, ...], dest: Path, node_dir: str) -> None:
    """venv + pip install into ``dest``, made at ``node_dir`` inside a private mount namespace."""
    log = dest / "build.log"
    script = (
        'set -e; mount -t tmpfs -o mode=0755 orchestrate-sim /usr/local; mkdir -p "$2"; '
        'mount --bind "$1" "$2"; "$3" -m venv "$2"; '
        '"$2/bin/python" -m pip install --no-input --disable-pip-version-check -q "${@:5}" >>"$4" 2>&1'
    )
    argv = ["unshare", "--mount", "--propagation", "private", "--", "bash", "-c", script, "build"]
    argv += [str(dest), node_dir, exe, str(log), *requirements]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
        raise SimError(f"building the nodes' Python failed ({proc.stderr.strip()}):\n{tail}")
    site = dest / "lib" / f"python{version}" / "site-packages"
    (site / "orchestrate_sim_node.pth").write_text(PTH)


def prune(keep: set[str]) -> list[str]:
    """Remove cached envs that no cluster uses and that are not in ``keep``; returns their keys."""
    used = {st.node_python for st in map(state.ClusterState.load, state.known_clusters()) if st}
    gone = []
    for path in sorted(CACHE.iterdir()) if CACHE.is_dir() else []:
        if path.is_dir() and path.name not in keep | used and ".tmp-" not in path.name:
            shutil.rmtree(path, ignore_errors=True)
            gone.append(path.name)
    return gone


def ensure(report: Report = lambda line: None) -> NodePython:
    """The env for the current pins, built first if this machine has none (serialised by a lock)."""
    exe, version = base_python()
    requirements = pins()
    key = key_of(requirements, version)
    path, node_dir = CACHE / key, f"/usr/local/python{version}"
    if ready(path):
        return NodePython(key, path, node_dir)
    state.make_private_dir(CACHE)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready(path):
            report(f"node Python: building {path} once for this machine ({', '.join(requirements)}; ~2 min)")
            start = time.monotonic()
            tmp = CACHE / f"{key}.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(mode=0o755)
            try:
                _build(exe, version, requirements, tmp, node_dir)
                info = {"pins": list(requirements), "python": exe, "version": version, "built": time.time()}
                (tmp / ".complete").write_text(json.dumps(info, indent=1) + "\n")
                shutil.rmtree(path, ignore_errors=True)
                tmp.rename(path)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            report(f"node Python: ready in {time.monotonic() - start:.0f} s")
            prune({key})
    return NodePython(key, path, node_dir)


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m orchestrator.sim.node_python``: build the env now (as root), print its folder."""
    env = ensure(lambda line: print(line, file=sys.stderr, flush=True))
    print(env.host_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
