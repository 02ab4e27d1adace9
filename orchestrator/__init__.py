"""orchestrate: plan, launch, watch and stop iFlytekSpark jobs on Ascend clusters."""

__version__ = "0.1.0"
