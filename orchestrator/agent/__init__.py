"""The node agent (``node``: node side, shipped to nodes as one zipapp built by ``bundle``) and its
controller side (``client``, ``bundle``)."""
