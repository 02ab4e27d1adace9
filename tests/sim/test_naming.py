"""Cluster names, kernel object names and subnet choice (fast, no cluster)."""

from __future__ import annotations

import ipaddress

import pytest

from orchestrator.errors import InputError, SimError
from orchestrator.sim import state, subnet


def test_names_fit_the_kernel_and_do_not_capture_other_clusters():
    name = "a" * 24
    assert len(state.veth_name(name, 150)) <= 15 and len(state.bridge_name(name)) <= 15
    assert state.netns_re("a").match(state.netns_name("a", 3))
    assert not state.netns_re("a").match(state.netns_name("a-1", 3))  # cluster "a-1" is not "a"
    assert state.veth_name("a", 1) != state.veth_name("b", 1)
    for bad in ("", "A", "1abc", "a_b", "a" * 25, "a.n1"):
        with pytest.raises(InputError):
            state.check_name(bad)


def test_subnet_is_derived_from_the_name_and_skips_taken_networks():
    first = subnet.choose("alpha", [])
    assert first == subnet.choose("alpha", ["192.0.2.0/24"])  # stable for a name
    assert ipaddress.ip_network(first).subnet_of(subnet.POOL)
    second = subnet.choose("alpha", [first, "172.16.0.0/12"])
    assert second != first
    assert ipaddress.ip_network(subnet.choose("alpha", ["10.213.0.0/17"])).subnet_of(
        ipaddress.ip_network("10.213.128.0/17")
    )
    with pytest.raises(SimError, match="no free /24"):
        subnet.choose("alpha", ["10.0.0.0/8"])
    assert subnet.node_address(first, 1).endswith(".11") and subnet.host_address(first, 1).endswith(".1")
