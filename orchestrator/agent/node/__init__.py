"""The node agent (node side; Python 3.9+, standard library, Linux /proc): starts, supervises, reports
on and stops one job's processes on a node. Shipped as one zipapp (``orchestrator.agent.bundle``) holding
this package and the npu-smi/hccn parsers of ``orchestrator.ascend``; run as
``python orchestrate-agent-<sha>.pyz [--workdir DIR] <verb> ...`` (``cli``).

A node is this host's network namespace. Only processes of jobs recorded here are ever stopped; NPUs
count as free once npu-smi lists no process on them. Several jobs may run at once: a start is refused
only for the NPUs (rank slots on cpu) and ports a live job holds.
"""
