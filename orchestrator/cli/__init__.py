"""The `orchestrate` command line: one small module per verb (``cmd_*.py``)."""
