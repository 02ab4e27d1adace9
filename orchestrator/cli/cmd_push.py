"""`orchestrate push INVENTORY SRC --to NODE_PATH [--checkpoint] [--hosts H,..] [--mode M] [--json]`."""

from __future__ import annotations

import sys
from typing import Optional

import click

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _rate(value: Optional[str]) -> Optional[float]:
    """``50M`` -> bytes per second (K, M, G are powers of 1024)."""
    if not value:
        return None
    text = value.strip().lower().removesuffix("/s").removesuffix("b")
    unit = text[-1] if text and text[-1] in _UNITS else ""
    try:
        return float(text[: len(text) - len(unit)]) * _UNITS[unit]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a rate like 500K, 50M or 1G") from None


def _summary(result) -> str:
    from rich.filesize import decimal

    lines = []
    for n in result.nodes:
        state = "ok" if n.ok else f"FAILED: {n.error}"
        lines.append(f"  {n.host:<20} {n.route:<14} sent {n.sent:>3}  skipped {n.skipped:>3}  "
                     f"wrote {decimal(n.bytes_written):>10}  {state}")  # fmt: skip
    rate = result.controller_bytes / result.seconds if result.seconds else 0
    lines.append(f"controller sent {decimal(result.controller_bytes)} in {result.seconds:.1f}s "
                 f"({decimal(int(rate))}/s); nodes wrote {decimal(result.bytes_written)}")  # fmt: skip
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)


@click.command("push")
@click.argument("inventory", type=click.Path(exists=True, dir_okay=False))
@click.argument("src", type=click.Path(exists=True))
@click.option("--to", "dest", required=True, metavar="NODE_PATH",
              help="Destination folder on the nodes (relative: under each node's workdir).")  # fmt: skip
@click.option("--checkpoint", is_flag=True,
              help="SRC is a checkpoint (.ckpt, folder, or model_dir of rank_N shards): lay it out as "
                   "NODE_PATH/rank_<R>/ on the node running rank R (a complete one to rank_0 everywhere).")  # fmt: skip
@click.option("--hosts", default=None, help="Comma-separated hosts to push to (default: every node).")
@click.option("--mode", default="auto", show_default=True, type=click.Choice(["auto", "relay", "direct"]),
              help="relay: chain the nodes (controller sends once); direct: controller to each node.")  # fmt: skip
@click.option("--relay-hop", default="tcp", show_default=True, type=click.Choice(["tcp", "ssh"]),
              help="How nodes forward to each other: tcp (plain, on the cluster network) or ssh (encrypted, "
                   "for an untrusted data network; the nodes need SSH keys for each other).")  # fmt: skip
@click.option(
    "--verify", is_flag=True, help="Re-hash files on the nodes instead of trusting their hash caches."
)
@click.option(
    "--limit-rate", default=None, metavar="RATE", help="Cap the controller's sending, e.g. 50M (per s)."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON summary (bytes moved, files skipped, seconds)."
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bars (default: when stderr is a terminal)."
)
def command(inventory: str, src: str, dest: str, checkpoint: bool, hosts: Optional[str], mode: str, relay_hop: str,
            verify: bool, limit_rate: Optional[str], as_json: bool, progress: Optional[bool]) -> None:  # fmt: skip
    """Push SRC (file or folder) to NODE_PATH on the nodes of INVENTORY.

    Files a node already holds (same size, mtime and sha256) are skipped; interrupted files resume from
    their .part; where nodes reach each other the bytes are relayed node to node; on a verified shared
    path (cluster.shared_paths) they are written once.
    """
    from pathlib import Path

    from orchestrator.checkpoint import checkpoint_targets, inspect_checkpoint
    from orchestrator.inventory import load_inventory
    from orchestrator.transfer import PushOptions, Target, build_items, push, source_files
    from orchestrator.transfer.targets import node_dest, select_nodes

    inv = load_inventory(inventory)
    nodes = select_nodes(inv, hosts)
    if checkpoint:
        ckpt = inspect_checkpoint(Path(src))
        targets = [Target(t.node, node_dest(t.node, dest), t.items, t.exclusive)
                   for t in checkpoint_targets(ckpt, inv.nodes, dest) if t.node in nodes]  # fmt: skip
    else:
        items = tuple(build_items(source_files(Path(src))))
        targets = [Target(n, node_dest(n, dest), items) for n in nodes]
    show = sys.stderr.isatty() and not as_json if progress is None else progress
    options = PushOptions(mode=mode, verify=verify, limit_rate=_rate(limit_rate), relay_hop=relay_hop,
                          shared_paths=inv.cluster.shared_paths, progress=show)  # fmt: skip
    result = push(targets, options)
    click.echo(result.to_json() if as_json else _summary(result))
    result.check()
