"""MindFormers' own decision of the device a rank binds, run without importing MindFormers or MindSpore.

Importing ``mindformers`` costs about 3 s and 400 MB a process (it loads MindSpore), too much for 16
ranks on two cores. The decision itself is plain Python: ``MSContextOperator._handle_data`` and
``_set_device_id`` in ``mindformers/core/context/build_context.py`` (``device_id`` from the YAML's
``context`` if present, else the ``DEVICE_ID`` variable; dropped in a dynamic cluster, which
``mindformers/tools/utils.py: check_in_dynamic_cluster`` recognises by ``MS_ROLE``). So the source of
exactly those definitions is read from the MindFormers installed in this node's Python (found with
``importlib.util.find_spec``, which does not import it), compiled with ``ast`` and run in a namespace
whose MindSpore hooks (``set_context`` and friends) only record what they are given. What MindSpore
would receive as ``set_context(device_id=...)`` is the answer; a MindFormers whose code changed shape
makes this fail loudly rather than guess.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import os
from types import SimpleNamespace
from typing import Any, Dict, Iterable, Optional


class AttrDict(dict):
    """The part of MindFormerConfig the decision uses: a dict whose keys read as attributes."""

    def __getattr__(self, name: str) -> Any:
        return self.get(name)


class _Logger:
    def info(self, *args: Any, **kw: Any) -> None:
        pass

    warning = debug = error = info


def mindformers_dir() -> str:
    spec = importlib.util.find_spec("mindformers")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("ModuleNotFoundError: No module named 'mindformers' (the node Python lacks it)")
    return list(spec.submodule_search_locations)[0]


def _pick(path: str, names: Iterable[str]) -> ast.Module:
    """The top-level classes, functions and assignments called ``names`` of a source file."""
    wanted = set(names)
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    body = []
    for node in tree.body:
        name = getattr(node, "name", None)
        targets = [getattr(t, "id", None) for t in getattr(node, "targets", [])]
        if name in wanted or wanted.intersection(targets):
            body.append(node)
            wanted.difference_update([name, *targets])
    if wanted:
        raise RuntimeError(f"MindFormers changed: {path} no longer defines {', '.join(sorted(wanted))}")
    return ast.Module(body=body, type_ignores=[])


def _namespace(root: str) -> Dict[str, Any]:
    context = SimpleNamespace(GRAPH_MODE=0, PYNATIVE_MODE=1)  # mindspore.context's constants
    ns: Dict[str, Any] = {"os": os, "context": context, "__name__": "mindformers_decision"}
    utils = os.path.join(root, "tools", "utils.py")
    exec(compile(_pick(utils, ["MODE", "check_in_dynamic_cluster"]), utils, "exec"), ns)
    validators = os.path.join(root, "core", "context", "validators.py")
    from enum import Enum

    ns["Enum"] = Enum
    exec(compile(_pick(validators, ["RunMode"]), validators, "exec"), ns)
    ns.update(
        dataclass=dataclasses.dataclass,
        logger=_Logger(),
        get_output_subpath=lambda sub, append_rank=True: os.path.join("output", sub),
        MFContextConfig=SimpleNamespace(get_supported_kwargs=lambda: ()),
        ms=SimpleNamespace(runtime=SimpleNamespace(set_kernel_launch_group=lambda **kw: None)),
        ms_context=SimpleNamespace(set_context=lambda **kw: None, get_context=lambda key: None),
    )
    return ns


def ms_context(config: Dict[str, Any]) -> Dict[str, Any]:
    """The keyword arguments MindFormers' ``MSContextOperator`` passes to MindSpore's set_context for
    this config (the YAML with the command line applied) in this process's environment."""
    root = mindformers_dir()
    ns = _namespace(root)
    build = os.path.join(root, "core", "context", "build_context.py")
    exec(compile(_pick(build, ["MSContextOperator"]), build, "exec"), ns)
    operator = ns["MSContextOperator"]
    seen: Dict[str, Any] = {}
    operator.set_context = staticmethod(lambda **kw: seen.update(kw))
    cfg = AttrDict(config)
    cfg["context"] = dict(config.get("context") or {})
    operator(cfg)
    return seen


def bound_device(config: Dict[str, Any]) -> Optional[int]:
    """The device id MindSpore is told to bind (None: MindFormers passes none; MindSpore then picks)."""
    value = ms_context(config).get("device_id")
    return None if value is None else int(value)
