"""Every Slurm command line the backend runs, built as argv lists (quoted by the transport)."""

from __future__ import annotations

from typing import Sequence

from orchestrator.slurm.settings import SlurmSettings

JOB_NAME_PREFIX = "orchestrate-"


def allocation_script(job_id: str, nodes: int, devices: int, s: SlurmSettings, output: str) -> str:
    """The batch script that holds a job's nodes: it only sleeps; the node agents run as job steps
    (``srun --overlap``) started by the controller, so a restart reuses the same allocation."""
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={JOB_NAME_PREFIX}{job_id}",
        f"#SBATCH --nodes={nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --output={output}",
    ]
    if s.exclusive:
        lines.append("#SBATCH --exclusive")
    for flag, value in (("partition", s.partition), ("account", s.account), ("qos", s.qos),
                        ("time", s.time_limit)):  # fmt: skip
        if value:
            lines.append(f"#SBATCH --{flag}={value}")
    if s.gres and devices:
        lines.append(f"#SBATCH --gres={s.gres}:{devices}")
    lines += [
        f"# Holds the nodes of orchestrate job {job_id}; `orchestrate stop` ends it with scancel.",
        'echo "allocation $SLURM_JOB_ID on $SLURM_JOB_NODELIST"',
        "exec sleep infinity",
    ]
    return "\n".join(lines) + "\n"


def sbatch(script_path: str) -> list[str]:
    return ["sbatch", "--parsable", script_path]


def show_job(slurm_job: str) -> list[str]:
    return ["scontrol", "show", "job", "-o", slurm_job]


def scancel(slurm_job: str, signal: str = "") -> list[str]:
    return ["scancel", *([f"--signal={signal}"] if signal else []), slurm_job]


def step_on_node(slurm_job: str, node: str, command: str) -> list[str]:
    """``command`` (one shell line, already quoted) as a one-task step on ``node``, overlapping the steps
    that already run there; the step's exit code is the command's."""
    return ["srun", f"--jobid={slurm_job}", "--overlap", "--nodes=1", "--ntasks=1", f"--nodelist={node}",
            "--quiet", "--kill-on-bad-exit=0", "--", "/bin/sh", "-c", command]  # fmt: skip


def step_per_node(slurm_job: str, nodes: Sequence[str], command: str) -> list[str]:
    """One task per node on ``nodes`` (the node agents of an attempt): ``command`` is a shell line."""
    return ["srun", f"--jobid={slurm_job}", "--overlap", f"--nodes={len(nodes)}", "--ntasks-per-node=1",
            f"--nodelist={','.join(nodes)}", "--quiet", "--kill-on-bad-exit=0", "--", "/bin/sh", "-c",
            command]  # fmt: skip
