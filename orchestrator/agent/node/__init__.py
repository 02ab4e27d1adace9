"""The node agent (node side; Python 3.9+, standard library, Linux /proc): starts, supervises, reports
on and stops one job's processes on a node. Shipped as one zipapp (``orchestrator.agent.bundle``) holding
this package, the npu-smi parser of ``orchestrator.ascend`` and the push receiver's modules; run as
``python orchestrate-agent-<sha>.pyz [--workdir DIR] <verb> ...`` (``cli``), unpacked by its first run
beside itself (``orchestrator/agent/zipapp_main.py``) so that Python caches its bytecode.

A node is this host's network namespace. Only processes of jobs recorded here are ever stopped; NPUs
count as free once npu-smi lists no process on them. Several jobs may run at once: a start is refused
only for the NPUs (rank slots on cpu) and ports a live job holds.
"""
