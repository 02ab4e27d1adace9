"""Planning a job, fully offline: strategy, memory estimate, rendered MindFormers YAML, launch material.

``make_plan(inventory, task, overrides, discovered)`` is pure; ``write_plan`` writes the plan folder
byte-identically for the same plan; ``load_plan`` reads it back from plan.json.
"""

from orchestrator.plan.model import NodePlan, Plan, RankLaunch, Transfer
from orchestrator.plan.plan_io import load_plan, plan_json, write_plan
from orchestrator.plan.planner import make_plan

__all__ = ["NodePlan", "Plan", "RankLaunch", "Transfer", "load_plan", "make_plan", "plan_json", "write_plan"]
