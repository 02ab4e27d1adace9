"""The node agent (``node_agent.py``, shipped to nodes and run alone) and its controller side (``client``)."""
