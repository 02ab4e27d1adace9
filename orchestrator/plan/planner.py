"""``make_plan``: inventory + task + overrides in, a complete Plan out. Pure and deterministic.

No clock, no network, no environment reads: everything comes from the arguments and the job's own
input files on this machine (a model_config YAML named by ``job.model``; the tokenizer, checked against
the model's vocabulary; the checkpoint's layout, which decides how the ranks load it; the eval
dataset's columns). Ranks come from the merged rank table (string order of server_id), never from the
order nodes are listed in.
"""

from __future__ import annotations

import ipaddress
import posixpath
from dataclasses import dataclass, replace
from typing import Any, Optional, Sequence

from orchestrator.errors import InputError, PlanError, Problem
from orchestrator.inventory.profiles import TASKS
from orchestrator.plan import hardware, launch_env, transfers
from orchestrator.plan.inputs import TokenizerFiles, check_tokenizer, is_shared, mindrecord_columns
from orchestrator.plan.job import JobOptions, job_options, lr_schedule
from orchestrator.plan.loading import AUTO_TRANS_MAX_DEVICES, CheckpointLoad, checkpoint_load
from orchestrator.plan.memory import check_fits
from orchestrator.plan.model import SCHEMA, NodePlan, Plan, Transfer
from orchestrator.plan.model_presets import ModelPreset, resolve_model, with_overrides
from orchestrator.plan.overrides import Override, by_section, parse_overrides
from orchestrator.plan.render import render_yaml_per_host
from orchestrator.plan.strategy import Strategy, choose_strategy
from orchestrator.plan.timeouts import choose_timeouts
from orchestrator.ranktable import (
    NodeDevices,
    RankTable,
    build_rank_table,
    check_rank_table,
    node_rank_tables,
    rank_table_json,
)

INFER = ("predict", "predict_lora", "export")


def _model(opts: JobOptions, overrides: list[Override]) -> tuple[ModelPreset, list[Override]]:
    """The model preset with ``model.*`` fields applied; other model keys become YAML-path overrides."""
    preset = resolve_model(opts.model)
    values = by_section(overrides, "model")
    preset = with_overrides(preset, {k: v for k, v in values.items() if "." not in k})
    extras = dict(preset.extra)
    extras.update({k: v for k, v in values.items() if "." in k})
    tree = [
        Override(f"model.model_config.{k}", v, f"--set model.{k}", "yaml") for k, v in sorted(extras.items())
    ]
    return replace(preset, extra=()), tree


def _rank_table_problems(inventory: Any) -> list[Problem]:
    """Rank-table mode needs each node's device IPs and its IP address as ``server_id`` (HCCL reads
    the host's IP there; planning resolves no names)."""
    problems = [
        Problem(inventory.source, f"nodes[{i}].host",
                f"{n.host!r} is a hostname, but HCCL's rank table needs the node's IP address as server_id",
                f"write the node's IP address in `host` (keep the hostname in `name: {n.host}`)")
        for i, n in enumerate(inventory.nodes) if not _is_ip(n.host)
    ]  # fmt: skip
    return problems + [
        Problem(inventory.source, f"nodes[{h}].device_ips", "device IPs are unknown",
                "list device_ips, run with --discover, or use launch_mode: dynamic_cluster")
        for h in (n.host for n in inventory.nodes if not n.device_ips)
    ]  # fmt: skip


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _rank_table(inventory: Any, mode: str, discovered: Optional[Any] = None) -> RankTable:
    problems = _rank_table_problems(inventory) if mode == "rank_table" else []
    problems += hardware.super_pod_problems(inventory, discovered) if mode == "rank_table" else []
    if problems:
        raise InputError(problems)
    nodes = [
        NodeDevices(
            server_id=n.host,
            devices=tuple(zip(n.devices, n.device_ips or ("",) * len(n.devices))),
            super_pod_id=hardware.super_pod_id(n, discovered),
            host_ip=hardware.host_ip(n),
            super_device_ids=hardware.super_device_ids(n, discovered),
        )
        for n in inventory.nodes
    ]
    return build_rank_table(nodes, hardware.table_version(inventory))


def _check_table(table: RankTable, inventory: Any) -> None:
    problems = check_rank_table(table, inventory.profile, inventory.source)
    if problems:
        raise InputError(problems)


def _job_dir(inventory: Any, spec: Any, task: str) -> str:
    return f"{spec.workdir.rstrip('/')}/jobs/{inventory.cluster.name}-{task}"


def _out_dir(opts: JobOptions, job_dir: str) -> str:
    return opts.output_dir if posixpath.isabs(opts.output_dir) else f"{job_dir}/{opts.output_dir}"


def _columns(task: str, eval_columns: Optional[tuple[str, ...]]) -> list[str]:
    """Pretrain rows hold input_ids; SFT rows add loss_mask; eval reads what its dataset holds."""
    if task == "pretrain" or (task == "eval" and "loss_mask" not in (eval_columns or ())):
        return ["input_ids"]
    return ["input_ids", "loss_mask"]


def _yaml_context(job: _Job, job_dir: str, inputs: dict[str, str]) -> dict[str, Any]:
    """The template's values for the nodes of job folder ``job_dir`` (all but ``host``)."""
    inventory, task, st, model, opts = job.inventory, job.task, job.strategy, job.model, job.opts
    profile = inventory.profile
    accel = profile.accelerator
    yaml_run_mode = "predict" if task == "export" else launch_env.RUN_MODES[task]  # MindFormers has no export
    auto_trans = job.checkpoint.auto_trans_ckpt if job.checkpoint else bool(opts.auto_trans_ckpt)
    return {
        "task": task,
        "profile": profile.name,
        "run_mode": yaml_run_mode,
        "use_parallel": st.world > 1,
        "auto_trans_ckpt": auto_trans,
        "accelerator": accel,
        "device_target": "Ascend" if accel else "CPU",
        "max_device_memory": f"{st.max_device_memory_gb:g}GB",
        "parallel_mode": 1 if accel else 0,
        "full_batch": accel,
        "gradients_mean": not accel,
        "strategy": st,
        "lr": lr_schedule(task, opts),
        "columns": _columns(task, job.eval_columns),
        "model": {
            "name": model.name,
            "fields": list(model.model_config_fields().items()) + [(hardware.FLASH_KEY, job.flash)],
        },
        "embedding_dtype": "float16" if st.compute_dtype == "float16" else "float32",
        "use_past": task in INFER,
        "is_dynamic": profile.is_dynamic_export and st.mp == 1,
        "job": {
            "seed": opts.seed,
            "output_dir": _out_dir(opts, job_dir),
            "load_checkpoint": inputs.get("load_checkpoint", ""),
            "src_strategy": inputs.get("src_strategy"),
            "only_save_strategy": opts.only_save_strategy,
            "resume": opts.resume,
            "epochs": opts.epochs,
            "sink_size": opts.sink_size,
            "save_checkpoint_steps": opts.save_checkpoint_steps,
            "train_dataset_node": inputs.get("train_dataset", ""),
            "eval_dataset_node": inputs.get("eval_dataset"),
            "predict_length": opts.predict_length,
        },
    }


def _warnings(task: str, st: Strategy, opts: JobOptions, ckpt: Optional[CheckpointLoad]) -> list[str]:
    out = []
    if st.training and not opts.train_dataset:
        out.append("no train_dataset: set job.train_dataset (inventory job: or --set job.train_dataset=...)")
    if task == "eval" and not opts.eval_dataset:
        out.append("no eval_dataset: set job.eval_dataset (inventory job: or --set job.eval_dataset=...)")
    if task == "eval" and not opts.load_checkpoint:
        out.append("eval needs the checkpoint to score: set job.load_checkpoint")
    if (task in INFER or task == "lora") and not opts.load_checkpoint:
        out.append(f"{task} without load_checkpoint runs on random weights")
    if ckpt is not None and ckpt.layout == "unknown":
        out.append(
            f"load_checkpoint {ckpt.source} is not on this machine: its layout is not checked "
            f"(loaded {'with auto_trans_ckpt' if ckpt.auto_trans_ckpt else 'as given'})"
        )
    return out


def _outputs_shared(inventory: Any, task: str, opts: JobOptions) -> bool:
    """Every node's MindFormers output_dir lies on a cluster shared path."""
    shared = inventory.cluster.shared_paths
    return all(is_shared(_out_dir(opts, _job_dir(inventory, n, task)), shared) for n in inventory.nodes)


@dataclass(frozen=True)
class _Job:
    """The decisions shared by every node of one plan."""

    inventory: Any
    task: str
    opts: JobOptions
    model: ModelPreset
    strategy: Strategy
    tree_overrides: tuple[Override, ...]
    launch: launch_env.JobContext
    table: RankTable
    hostnames: dict[str, str]
    checkpoint: Optional[CheckpointLoad] = None
    tokenizer: Optional[TokenizerFiles] = None
    eval_columns: Optional[tuple[str, ...]] = None
    flash: bool = False  # FlashAttentionScore (use_flash_attention in the YAML)


def _render_yamls(job: _Job, specs: Sequence[Any]) -> dict[str, str]:
    """Every node's YAML by host, rendered and checked once per job folder: the nodes of one job
    folder differ only in their host (see ``render_yaml_per_host``)."""
    groups: dict[str, list[str]] = {}
    for spec in specs:
        groups.setdefault(_job_dir(job.inventory, spec, job.task), []).append(spec.host)
    out: dict[str, str] = {}
    for job_dir, hosts in groups.items():
        inputs = transfers.node_inputs(job.task, job.opts, job_dir, job.launch.shared_paths, job.checkpoint)
        ctx = _yaml_context(job, job_dir, inputs)
        out.update(render_yaml_per_host(f"{job.task}.yaml.j2", ctx, hosts, job.tree_overrides))
    return out


def _node_plan(job: _Job, server: Any, spec: Any, own_table: RankTable, yaml_text: str
               ) -> tuple[NodePlan, list[Transfer]]:  # fmt: skip
    """One node's launches and transfers; ranks and devices come from the merged table,
    ``own_table`` is the node's slice of it, ``yaml_text`` its rendered YAML."""
    task, opts = job.task, job.opts
    job_dir = _job_dir(job.inventory, spec, task)
    devices = tuple(int(d.device_id) for d in server.devices)
    ranks = tuple(int(d.rank_id) for d in server.devices)
    inputs = transfers.node_inputs(task, opts, job_dir, job.launch.shared_paths, job.checkpoint)
    node = launch_env.NodeContext(
        spec.host, spec.python, job_dir, f"{job_dir}/config/{task}.yaml", spec.env, len(devices)
    )
    slots = [(None, None)] if spec.host == job.launch.sched_host else []
    launches = tuple(
        launch_env.process_launch(
            job.launch, node, launch_env.run_argv(job.launch, node, opts, inputs, dev), rank, dev
        )
        for rank, dev in slots + list(zip(ranks, devices))
    )
    plan = NodePlan(
        host=spec.host,
        name=job.hostnames.get(spec.host, spec.name),
        local=spec.local,
        python=spec.python,
        job_dir=job_dir,
        devices=devices,
        ranks=ranks,
        yaml_name=f"{task}.yaml",
        yaml_text=yaml_text,
        rank_table_text=rank_table_json(own_table),
        launches=launches,
        ascend_root=spec.ascend_root,
    )
    dynamic = job.launch.launch_mode == "dynamic_cluster"
    moves = transfers.generated_transfers(spec.host, job_dir, task, [x.name for x in launches], dynamic)
    companions = {"tokenizer": job.tokenizer.companion} if job.tokenizer and job.tokenizer.companion else {}
    return plan, moves + transfers.input_transfers(spec.host, task, opts, inputs, job.checkpoint, companions)


def make_plan(
    inventory: Any, task: str, overrides: Sequence[str] = (), discovered: Optional[Any] = None
) -> Plan:
    """The plan of ``task`` on ``inventory`` (see the module docstring). Raises InputError/PlanError."""
    if task not in TASKS:
        raise InputError(
            [Problem("--task", "task", f"unknown task {task!r}", f"use one of {', '.join(TASKS)}")]
        )
    if discovered is not None:
        from orchestrator.discover.apply import apply_discovery

        inventory = apply_discovery(inventory, discovered)
    parsed = parse_overrides(inventory.job.overrides, overrides)
    profile, world = inventory.profile, inventory.world_size
    if world < 1:
        raise InputError(
            [Problem(inventory.source, "nodes", "no devices in the inventory", "list nodes with devices")]
        )
    opts = job_options(inventory.job, by_section(parsed, "job"))
    model, model_tree = _model(opts, parsed)
    st = choose_strategy(profile, task, world, model, by_section(parsed, "parallel"))
    flash = hardware.flash_attention(profile, by_section(parsed, "model"))
    infer_length = opts.predict_length if task in INFER else None
    memory = check_fits(model, st, profile, flash=flash, infer_length=infer_length)
    mode = inventory.cluster.effective_launch_mode
    if mode == "rank_table" and not profile.accelerator:
        raise PlanError(f"profile {profile.name} has no NPUs: launch_mode must be dynamic_cluster")
    table = _rank_table(inventory, mode, discovered)
    if mode == "rank_table":
        _check_table(table, inventory)
    dynamic = mode == "dynamic_cluster"
    sched_host = table.servers[0].server_id if dynamic else None
    timeouts = choose_timeouts(model, st, profile, len(inventory.nodes))
    shared = inventory.cluster.shared_paths
    launch = launch_env.JobContext(
        task, mode, world, profile.accelerator, timeouts, sched_host, opts.sched_port, shared
    )
    hostnames = {n.host: n.hostname for n in discovered.nodes} if discovered is not None else {}
    problems: list[Problem] = []
    warnings: list[str] = hardware.plan_warnings(profile)
    tokenizer = check_tokenizer(opts.tokenizer, model, shared, problems, warnings)
    offline = world > AUTO_TRANS_MAX_DEVICES and not _outputs_shared(inventory, task, opts)
    try:
        ckpt = checkpoint_load(task, st, profile.accelerator, opts, offline)
    except InputError as exc:
        problems += exc.problems
        ckpt = None
    if problems:
        raise InputError(problems)
    columns = mindrecord_columns(opts.eval_dataset) if task == "eval" else None
    job = _Job(inventory, task, opts, model, st, tuple(model_tree + parsed), launch, table, hostnames,
               ckpt, tokenizer, columns, flash)  # fmt: skip
    specs = {n.host: n for n in inventory.nodes}
    ordered = [specs[s.server_id] for s in table.servers]
    own, yamls = node_rank_tables(table), _render_yamls(job, ordered)
    built = [_node_plan(job, s, n, own[n.host], yamls[n.host]) for s, n in zip(table.servers, ordered)]
    return Plan(
        schema=SCHEMA,
        cluster=inventory.cluster.name,
        profile=profile.name,
        task=task,
        run_mode=launch_env.RUN_MODES[task],
        inventory_source=inventory.source,
        launch_mode=mode,
        world_size=world,
        model=model,
        job=opts,
        strategy=st,
        memory=memory,
        timeouts=timeouts,
        overrides=tuple(f"{k}={v}" for k, v in inventory.job.overrides) + tuple(overrides),
        rank_table_text=rank_table_json(table),
        scheduler_host=sched_host,
        sched_port=opts.sched_port if dynamic else None,
        nodes=tuple(node for node, _ in built),
        transfers=tuple(t for _, moves in built for t in moves),
        warnings=tuple(_warnings(task, st, opts, ckpt) + warnings),
        checkpoint=ckpt,
        notes=(ckpt.note,) if ckpt else (),
    )
