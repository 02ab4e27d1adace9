"""Build rank tables from nodes, and the inverse (a table's nodes, one node's own table).

The rank order is HCCL's: servers in dictionary (string) order of ``server_id``, devices in order of
their physical id within a server, rank_id counting up across that order. So "10.0.0.10" sorts before
"10.0.0.9" (string order, on purpose, not numeric): a node's first rank always comes from the built
table, never from the order hosts were listed in, and the result does not depend on input order.
"""

from __future__ import annotations

from typing import Optional, Sequence

from orchestrator.ranktable.model import VERSIONS, NodeDevices, RankDevice, RankServer, RankTable, SuperPod

DEFAULT_SUPER_POD = "0"


def _sorted_devices(node: NodeDevices) -> list[tuple[int, str, object]]:
    supers = node.super_device_ids or (None,) * len(node.devices)
    if len(supers) != len(node.devices):
        raise ValueError(f"{node.server_id}: {len(supers)} super_device_ids for {len(node.devices)} devices")
    return sorted(
        ((dev, ip, sup) for (dev, ip), sup in zip(node.devices, supers)), key=lambda t: (t[0], t[1])
    )


def build_rank_table(nodes: Sequence[NodeDevices], version: str = "1.0") -> RankTable:
    """The rank table of ``nodes`` (any order). Validity (duplicates, subnets, ...) is
    :func:`check_rank_table`'s job; building only orders and numbers."""
    if version not in VERSIONS:
        raise ValueError(f"rank table version must be one of {', '.join(VERSIONS)}, not {version!r}")
    v12 = version == "1.2"
    servers, rank = [], 0
    for node in sorted(nodes, key=lambda n: (n.server_id, n.devices)):
        devices = []
        for dev, ip, sup in _sorted_devices(node):
            devices.append(RankDevice(str(dev), ip, str(rank), (sup or None) if v12 else None))
            rank += 1
        servers.append(RankServer(node.server_id, tuple(devices), host_ip=node.host_ip if v12 else None))
    pods: tuple[SuperPod, ...] = ()
    if v12:
        members: dict[str, list[str]] = {}
        for node in nodes:
            members.setdefault(node.super_pod_id or DEFAULT_SUPER_POD, []).append(node.server_id)
        pods = tuple(SuperPod(pod, tuple(sorted(ids))) for pod, ids in sorted(members.items()))
    return RankTable(version, tuple(servers), super_pods=pods)


def _pod_of(table: RankTable) -> dict[str, str]:
    """``{server_id: super_pod_id}`` of a version 1.2 table, built once (linear in servers)."""
    return {sid: pod.super_pod_id for pod in table.super_pods for sid in pod.server_ids}


def table_nodes(table: RankTable) -> tuple[NodeDevices, ...]:
    """The nodes a table was built from (device ids must be integers)."""
    pods = _pod_of(table)
    nodes = []
    for server in table.servers:
        supers = tuple(d.super_device_id or "" for d in server.devices)
        nodes.append(
            NodeDevices(
                server_id=server.server_id,
                devices=tuple((int(d.device_id), d.device_ip) for d in server.devices),
                super_pod_id=pods.get(server.server_id),
                host_ip=server.host_ip,
                super_device_ids=supers if any(supers) else (),
            )
        )
    return tuple(nodes)


def _own_table(version: str, server: RankServer, pod: Optional[str]) -> RankTable:
    """``server``'s one-server table, ranks from 0 in the order the merged table holds its devices
    (the merged table already sorts them): what ``build_rank_table([that node])`` gives, built
    from the server alone."""
    v12 = version == "1.2"
    devices = tuple(
        RankDevice(str(int(d.device_id)), d.device_ip, str(i), (d.super_device_id or None) if v12 else None)
        for i, d in enumerate(sorted(server.devices, key=lambda d: (int(d.device_id), d.device_ip)))
    )
    own = RankServer(server.server_id, devices, host_ip=server.host_ip if v12 else None)
    pods = (SuperPod(pod or DEFAULT_SUPER_POD, (server.server_id,)),) if v12 else ()
    return RankTable(version, (own,), super_pods=pods)


def node_rank_table(table: RankTable, server_id: str) -> RankTable:
    """``server_id``'s own one-server table, ranks renumbered from 0 (the shape mindformers'
    hccl_tools writes per node). Merging every node's table gives ``table`` back."""
    server = table.server(server_id)
    return _own_table(table.version, server, table.super_pod_of(server.server_id))


def node_rank_tables(table: RankTable) -> dict[str, RankTable]:
    """Every server's own table (as :func:`node_rank_table`), in table order, in one linear pass:
    each is its server's slice of ``table``."""
    pods = _pod_of(table)
    return {s.server_id: _own_table(table.version, s, pods.get(s.server_id)) for s in table.servers}
