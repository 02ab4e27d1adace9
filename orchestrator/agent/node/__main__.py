"""``python -m orchestrator.agent.node [--workdir DIR] <verb> ...``: the agent run from a checkout (tests,
local runs); on nodes it runs as a zipapp (``orchestrator/agent/zipapp_main.py``)."""

import sys

from orchestrator.agent.node.cli import main

sys.exit(main())
