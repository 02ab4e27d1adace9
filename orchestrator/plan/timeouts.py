"""One policy for every timeout of a job: HCCL, MindSpore's cluster forming, the agent's heartbeat.

Why these values (docs/ascend-cluster.md §2-3):
- MS_TOPO_TIMEOUT bounds how long workers wait for the dynamic cluster to form. Processes start over
  SSH one node after another and import MindSpore (~3-15 s each), so it grows with the node count:
  300 s + 5 s per node.
- HCCL_CONNECT_TIMEOUT bounds link set-up between ranks, which starts only after every rank has
  joined; it must be shorter than the topology timeout so that a rank that never came up is reported
  by HCCL (naming the peer) rather than by a bare topology timeout: topo - 60 s, at least 120 s
  (CANN's minimum).
- HCCL_EXEC_TIMEOUT bounds how long a rank waits in a collective for its peers. Peers may lag by a
  whole step plus a checkpoint save (shards written between steps), so it is 4x the longest step
  estimate plus the save estimate, at least CANN's default 1836 s, at most 17340 s; on Atlas 800
  (910A) CANN rounds it to a multiple of 68 s, so we do.
- Failure detection: the controller's monitor declares a node lost when its agent has not answered
  for ``failure_detect_s`` (``JobRecord.failure_detect_s``, read by ``launch.watcher``); the agent
  writes its heartbeat every ``heartbeat_s``. On Ascend a healthy node can answer late for minutes:
  a 13B graph compile keeps every core busy and a checkpoint save saturates the disk, so detection
  waits 180 s, or twice the save estimate when that is longer, but stays below HCCL_CONNECT_TIMEOUT
  (a node dead at start-up is named before its peers' link set-up times out) and at most a third of
  HCCL_EXEC_TIMEOUT. The CPU rehearsal (small models, seconds per step) detects in 20 s with a 1 s
  heartbeat. Stopping sends TERM, waits ``stop_grace_s``, then KILL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from orchestrator.inventory.profiles import HardwareProfile
from orchestrator.plan.model_presets import ModelPreset
from orchestrator.plan.strategy import Strategy

# Dense fp16/bf16 peak per device (FLOP/s) and the fraction a real job reaches.
PEAK_FLOPS = {"atlas-800t-a2-64g": 313e12, "atlas-800-32g": 256e12, "cpu": 50e9}
UTILISATION = 0.3
SAVE_BANDWIDTH = 0.5e9  # bytes/s one rank writes its checkpoint shard at (local disk, conservative)
HCCL_EXEC_DEFAULT, HCCL_EXEC_MAX, HCCL_CONNECT_MIN = 1836, 17340, 120
# (heartbeat, failure detection floor) in seconds: Ascend nodes, and the CPU rehearsal
ASCEND_DETECT, CPU_DETECT = (5.0, 180.0), (1.0, 20.0)


@dataclass(frozen=True)
class Timeouts:
    """Seconds. The first three become HCCL_CONNECT_TIMEOUT, HCCL_EXEC_TIMEOUT, MS_TOPO_TIMEOUT."""

    hccl_connect_s: int
    hccl_exec_s: int
    topo_s: int
    heartbeat_s: float
    failure_detect_s: float
    stop_grace_s: float
    step_estimate_s: float
    save_estimate_s: float

    def problems(self) -> list[str]:
        """The policy's invariants that these values break (empty when consistent)."""
        out = []
        if not self.hccl_connect_s < self.topo_s:
            out.append(f"HCCL connect {self.hccl_connect_s}s must be below topology {self.topo_s}s")
        if not self.hccl_exec_s > self.step_estimate_s + self.save_estimate_s:
            out.append(
                f"HCCL exec {self.hccl_exec_s}s must exceed the longest step "
                f"{self.step_estimate_s + self.save_estimate_s:.0f}s"
            )
        if not (
            self.failure_detect_s < self.hccl_connect_s and self.failure_detect_s * 3 <= self.hccl_exec_s
        ):
            out.append(f"failure detection {self.failure_detect_s}s must be well below HCCL's timeouts")
        if not self.heartbeat_s * 4 <= self.failure_detect_s:
            out.append(
                f"heartbeat {self.heartbeat_s}s must be well below failure detection {self.failure_detect_s}s"
            )
        return out


def step_seconds(model: ModelPreset, st: Strategy, profile: HardwareProfile) -> float:
    """Estimated seconds of one step: 6 N tokens FLOPs (8 N with recompute, 2 N for inference)."""
    tokens = st.batch_size * st.micro_batch_num * model.seq_length * st.dp
    per_token = (8 if st.recompute else 6) if st.training else 2
    flops = per_token * model.num_params * tokens
    return flops / (st.world * PEAK_FLOPS.get(profile.name, 50e9) * UTILISATION)


def choose_timeouts(model: ModelPreset, st: Strategy, profile: HardwareProfile, nodes: int) -> Timeouts:
    """The timeouts of a job of ``model`` with ``st`` on ``nodes`` nodes (reasoning: module docstring)."""
    step = step_seconds(model, st, profile)
    shard_bytes = model.num_params * 12 / st.world if st.training else 0.0  # weights + m + v
    save = shard_bytes / SAVE_BANDWIDTH
    topo = 300 + 5 * nodes
    connect = max(HCCL_CONNECT_MIN, topo - 60)
    exec_s = min(HCCL_EXEC_MAX, max(HCCL_EXEC_DEFAULT, int(4 * step + save) + 1))
    if profile.name == "atlas-800-32g":
        exec_s = min(HCCL_EXEC_MAX - HCCL_EXEC_MAX % 68, -(-exec_s // 68) * 68)
    heartbeat, detect = ASCEND_DETECT if profile.accelerator else CPU_DETECT
    if profile.accelerator:
        detect = min(max(detect, float(math.ceil(2 * save))), connect - 30.0, float(exec_s // 3))
    return Timeouts(
        hccl_connect_s=connect,
        hccl_exec_s=exec_s,
        topo_s=topo,
        heartbeat_s=heartbeat,
        failure_detect_s=detect,
        stop_grace_s=30.0,
        step_estimate_s=round(step, 3),
        save_estimate_s=round(save, 3),
    )
