"""The stand-in rank of a simulated Ascend node: what ``python -m iflytekspark.run`` does there.

These modules are copied into every node (``/usr/local/lib/orchestrate-sim/python``) and run under the
node's own Python (stdlib, PyYAML, and the MindFormers files of that env; Python 3.9+). The node
Python's ``.pth`` imports :mod:`osim_node_hook`, which hands a rank whose YAML says
``device_target: Ascend`` on a non-``cpu`` node to :mod:`osim_standin` instead of MindSpore's Ascend
backend. The stand-in checks what MindSpore, CANN and HCCL would (:mod:`osim_checks`, with MindFormers'
own device decision from :mod:`osim_mf`), claims its NPU, then trains in name only: MindFormers-format
step lines and ``rank_N`` checkpoints (:mod:`osim_ckpt`) that status, resume and collect-logs read.
"""
