"""`orchestrate collect-logs`: every node's logs, records and snapshots of a job, an index and a loss plot."""

from orchestrator.collect.job import CollectResult, collect_after_failure, collect_job_logs

__all__ = ["CollectResult", "collect_after_failure", "collect_job_logs"]
