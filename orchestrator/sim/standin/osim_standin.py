"""The stand-in rank: ``python -m iflytekspark.run`` on a simulated Ascend node.

In the order a real rank meets them: the shipped ``iflytekspark`` parses the command line and writes
it over the YAML (its own code: a node without the shipped package fails to import it); CANN's
environment must be there and point at this node's install; MindFormers' own context code decides the
device from the YAML and the environment (physical id through ASCEND_RT_VISIBLE_DEVICES); the rank
table must hold this rank on this host's IP, this device and its NIC's IP; the NPU is claimed (EJ0001
if a process holds it or released it less than the driver's lag ago). Then it "trains": one
MindFormers step line and progress line per step (``step_s`` of the hardware file apart) and a
``rank_N`` checkpoint every ``save_checkpoint_steps`` and at the end, resuming from ``load_checkpoint``
when the YAML says ``resume_training``.
"""

# ruff: noqa: UP031  (MindFormers' own %-formats, kept verbatim)
from __future__ import annotations

import datetime
import json
import os
import sys
import time
import traceback
from typing import Any, Dict, List, Optional

NODE_CONF = "/etc/orchestrate-sim/node.json"
LOGGER = "mindformers[mindformers/core/callback/callback.py:553] - INFO - "


def _node() -> Optional[Dict[str, Any]]:
    try:
        with open(os.environ.get("ORCHESTRATE_SIM_NODE_CONF", NODE_CONF)) as f:
            conf = json.load(f)
        with open(conf["hardware"]) as f:
            cluster = json.load(f)
    except (OSError, ValueError, KeyError):
        return None
    node = next((n for n in cluster["nodes"] if n["name"] == conf["node"]), None)
    if node is None:
        return None
    kind = node.get("kind") or cluster.get("kind", "cpu")
    return dict(conf, cluster=cluster, npus=node["npus"], kind=kind, server_index=node.get("server_index", 0),
                chips_per_npu=node.get("chips_per_npu", 1))  # fmt: skip


def _config_path(args: List[str]) -> Optional[str]:
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def maybe_run(args: List[str]) -> None:
    """Run the stand-in and exit the process if this is an Ascend run on a simulated Ascend node."""
    node, path = _node(), _config_path(args)
    if node is None or node["kind"] == "cpu" or not path or not os.path.isfile(path):
        return
    import yaml

    with open(path) as f:
        config = yaml.safe_load(f) or {}
    if ((config.get("context") or {}).get("device_target") or "Ascend") != "Ascend":
        return
    try:
        code = run(args, node)
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _log(text: str) -> None:
    now = datetime.datetime.now()
    print(
        "%s,%03d - %s%s" % (now.strftime("%Y-%m-%d %H:%M:%S"), now.microsecond // 1000, LOGGER, text),
        flush=True,
    )


def _fail(text: str) -> int:
    print(
        'Traceback (most recent call last):\n  File "iflytekspark/tasks/setup.py", in init_context',
        file=sys.stderr,
    )
    print(text, file=sys.stderr, flush=True)
    return 1


def run(args: List[str], node: Dict[str, Any]) -> int:
    import osim_checks as checks
    import yaml
    from iflytekspark.parallel_env import detect  # the shipped package: imported as a real rank does
    from iflytekspark.run import parse_args
    from iflytekspark.tasks.overrides import apply_overrides

    opts = parse_args(args)
    with open(opts.config) as f:
        config = yaml.safe_load(f) or {}
    apply_overrides(config, opts)
    env = os.environ
    try:
        checks.check_cann(env, node.get("ascend_root") or None)
        if config.get("use_parallel"):
            detect(env, "Ascend")
        import osim_mf

        logical = osim_mf.bound_device(config)
        logical = int(env.get("DEVICE_ID", "0")) if logical is None else logical
        device = checks.physical_device(logical, env, [int(n["id"]) for n in node["npus"]])
        rank = env.get("RANK_ID", "0") if config.get("use_parallel") else "0"
        if config.get("use_parallel") and not env.get("MS_ROLE"):
            sdid = (
                16 * node["server_index"] + device if node["chips_per_npu"] == 2 else None
            )  # npu-smi's SDID
            checks.check_entry(checks.rank_table_entry(env), device, node["address"], rank, sdid)
        _claim(node, device, config)
    except checks.RankFailure as exc:
        return _fail(str(exc))
    except Exception as exc:  # ParallelEnvError and the like: the model's own message
        return _fail("%s: %s" % (type(exc).__name__, exc))
    _log("rank %s bound device %d (logical %d), RANK_TABLE_FILE=%s" % (rank, device, logical,
                                                                       env.get("RANK_TABLE_FILE", "-")))  # fmt: skip
    return _train(config, int(rank), float(node["cluster"].get("step_s", 0.3)))


def _claim(node: Dict[str, Any], device: int, config: Dict[str, Any]) -> None:
    import osim_checks as checks

    sys.path.insert(0, node.get("tools", "/usr/local/lib/orchestrate-sim/tools"))
    import nodeconf

    text = str((config.get("context") or {}).get("max_device_memory") or "1GB").upper().rstrip("B")
    memory = int(float(text[:-1]) * 1024) if text.endswith("G") else 1024
    ok, holders = nodeconf.claim(device, "python", memory)
    if not ok:
        pids = ", ".join(str(h["pid"]) for h in holders)
        raise checks.RankFailure(
            "RuntimeError: [ERROR] device %d is held by process %s\n%s" % (device, pids, checks.EJ0001)
        )


def _train_settings(config: Dict[str, Any]) -> Dict[str, Any]:
    lr = config.get("lr_schedule") or {}
    monitor = next((c for c in config.get("callbacks") or [] if c.get("type") == "CheckpointMonitor"), {})
    return {
        "steps": int(lr.get("total_steps") or 0) if int(lr.get("total_steps") or 0) > 0 else 20,
        "epochs": int((config.get("runner_config") or {}).get("epochs") or 1),
        "save_every": int(monitor.get("save_checkpoint_steps") or 0),
        "prefix": monitor.get("prefix") or "iFlytekSpark",
        "lr": float(lr.get("learning_rate") or 1e-5),
        "output": config.get("output_dir") or "./output",
    }


def _step_lines(step: int, steps: int, loss: float, step_ms: float, lr: float) -> List[str]:
    """MFLossMonitor's two lines for one step (the formats of mindformers/core/callback/callback.py)."""
    line = "{ Epoch:[%3d/%3d], step:[%5d/%5d], loss: %5.6f, per_step_time: %dms, lr: %s, overflow cond: %s, " % (
        1, 1, step, steps, loss, int(step_ms), "%g" % lr, "False")  # fmt: skip
    line += "loss_scale: %s, global_norm: %s" % (1.0, "[1.2345]")
    percent = step / steps * 100
    bar = ("|%%-%ds|" % 50) % (int(50 * percent / 100) * "\u2588")
    left = datetime.timedelta(seconds=int((steps - step) * step_ms / 1000))
    return [line, "  %4.1f%% %s %.5f samples/s/p  %s }" % (percent, bar, 1000.0 / max(step_ms, 1.0), left)]


def _train(config: Dict[str, Any], rank: int, step_s: float) -> int:
    import osim_ckpt

    s = _train_settings(config)
    start = 0
    if config.get("resume_training") and config.get("load_checkpoint"):
        found, start = osim_ckpt.resume_step(str(config["load_checkpoint"]), rank)
        if found:
            _log("Start resume training from checkpoint %s (step %d)" % (found, start))
    folder = os.path.join(s["output"], "checkpoint", "rank_%d" % rank)
    prefix = _run_prefix(folder, "%s_rank_%d" % (s["prefix"], rank))
    last = start
    for step in range(start + 1, s["steps"] + 1):
        time.sleep(step_s)
        for line in _step_lines(step, s["steps"], 10.0 / (1 + 0.1 * step), step_s * 1000, s["lr"]):
            _log(line)
        last = step
        if s["save_every"] and step % s["save_every"] == 0:
            _save(folder, prefix, rank, step, start)
    if last > start and not (s["save_every"] and last % s["save_every"] == 0):
        _save(folder, prefix, rank, last, start)
    _log("rank %d finished: %d steps" % (rank, last))
    return 0


def _run_prefix(folder: str, prefix: str) -> str:
    """MindSpore's ModelCheckpoint: a prefix already used in the folder gets ``_<n>`` appended."""
    names = os.listdir(folder) if os.path.isdir(folder) else []
    taken = {n.rsplit("-", 1)[0] for n in names if n.endswith(".ckpt")}
    if prefix not in taken:
        return prefix
    n = 1
    while "%s_%d" % (prefix, n) in taken:
        n += 1
    return "%s_%d" % (prefix, n)


def _save(folder: str, prefix: str, rank: int, step: int, start: int) -> None:
    """``<prefix>-1_<n>.ckpt``: MindFormers counts ``n`` from this run's start, ``step_num`` inside is global."""
    import osim_ckpt

    osim_ckpt.write(os.path.join(folder, "%s-1_%d.ckpt" % (prefix, step - start)), step, 1, rank)
