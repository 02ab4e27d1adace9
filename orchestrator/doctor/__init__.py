"""Preflight checks on every node (`orchestrate doctor`): one table, one exit code."""

from orchestrator.doctor.checks import Check, Limits, Status
from orchestrator.doctor.run import DoctorReport, PreflightFailed, job_ports, run_doctor

__all__ = ["Check", "DoctorReport", "Limits", "PreflightFailed", "Status", "job_ports", "run_doctor"]
