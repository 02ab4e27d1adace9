"""The fake Ascend tools of a simulated node: stdlib-only scripts installed into each cluster.

``printers`` renders the outputs; ``npu_smi`` and ``hccn_tool`` parse the command line, read the node's
configuration (:mod:`.nodeconf`) and print. :func:`orchestrator.sim.tools.install` copies them into the
cluster's state folder behind two executables, ``npu-smi`` and ``hccn_tool``.
"""
