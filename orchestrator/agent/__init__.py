"""The node agent (``node_agent.py`` with ``node_devices.py`` and the npu-smi parser, shipped to nodes and
run there without this package) and its controller side (``client``)."""
