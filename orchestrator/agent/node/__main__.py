"""The agent zipapp's entry: ``python orchestrate-agent-<sha>.pyz [--workdir DIR] <verb> ...``."""

import sys

from orchestrator.agent.node.cli import main

sys.exit(main())
