"""Inventories for the discovery and doctor unit tests."""

from __future__ import annotations

from orchestrator.inventory import parse_inventory


def inventory(profile: str = "atlas-800t-a2-64g", nodes: str = "", launch_mode: str = "auto"):
    text = f"""cluster:
  name: t
  profile: {profile}
  launch_mode: {launch_mode}
  workdir: /opt/w
  python: /usr/bin/python3
nodes:
{nodes}"""
    return parse_inventory(text, "test.yaml")
