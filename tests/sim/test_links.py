"""Link limits of the simulated cluster: options parsed with clear errors, the filters the kernel applies,
`sim status` showing them, and a copy over a limited link taking as long as the rate says."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from orchestrator.errors import InputError
from orchestrator.sim import links
from tests.fixtures.sim import orchestrate, sim_name


@pytest.mark.parametrize("text, bps", [("200mbit", 200_000_000), ("1gbit", 10**9), ("25MBps", 200_000_000),
                                       ("1.5Mbit", 1_500_000)])  # fmt: skip
def test_rates_parse_with_their_units(text, bps):
    assert links.parse_rate(text) == bps


@pytest.mark.parametrize("text", ["200", "fast", "-5mbit", "0mbit", "1kbit"])
def test_bad_rates_name_the_option_and_the_fix(text):
    with pytest.raises(InputError, match="--link-rate"):
        links.parse_rate(text)


def test_a_delay_needs_a_rate_and_no_rate_means_no_limits():
    assert links.limits_from(None, None) is None
    with pytest.raises(InputError, match="--link-delay needs --link-rate"):
        links.limits_from(None, 5)
    assert links.limits_from("100mbit", 2) == links.LinkLimits(100_000_000, 2.0)


@pytest.mark.cluster
@pytest.mark.skipif(os.geteuid() != 0, reason="the simulated cluster needs root")
def test_limited_links_are_applied_shown_and_felt(tmp_path):
    from orchestrator import sim

    name = sim_name("lnk")
    cluster = sim.up(name, nodes=2, limits=links.limits_from("20mbit", None))
    try:
        st = cluster.state()
        assert st.links == {"rate_bps": 20_000_000, "delay_ms": 0.0}
        for n in st.nodes:
            assert "tbf" in links.show("eth0", n.netns) and "rate 20Mbit" in links.show("eth0", n.netns)
            assert "rate 20Mbit" in links.show(n.veth)
        assert "rate 20Mbit" in links.show(st.bridge)
        shown = orchestrate(tmp_path, "sim", "status", "--name", name)
        assert shown.returncode == 0 and "links 20 Mbit/s" in shown.stdout, shown.stderr
        # 4 MiB from the controller to node 1 over 20 Mbit/s: at least ~1.7 s (unlimited: a fraction of that)
        data = os.urandom(4 << 20)
        ssh = ["ssh", "-i", str(cluster.key), "-o", f"UserKnownHostsFile={cluster.known_hosts}",
               "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]  # fmt: skip
        start = time.monotonic()
        subprocess.run(
            [*ssh, f"{cluster.user}@{cluster.nodes[0].address}", "cat > /dev/null"], input=data, check=True
        )
        took = time.monotonic() - start
        assert took >= 1.2, f"4 MiB crossed a 20 Mbit/s link in {took:.2f}s"
    finally:
        sim.down(name)


def test_sim_up_refuses_a_bad_rate_before_building_anything(tmp_path):
    res = orchestrate(tmp_path, "sim", "up", "--name", "lnkbad", "--nodes", "1", "--link-rate", "fast")
    assert res.returncode != 0 and "--link-rate 'fast'" in res.stderr + res.stdout
    assert not links.netns.netns_list() or not any(
        n.startswith("osim-lnkbad.") for n in links.netns.netns_list()
    )


@pytest.mark.cluster
@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_a_delay_rides_on_the_rate_filter_or_names_the_missing_netem():
    from orchestrator.errors import SimError

    ns = f"lnk-t{os.getpid()}"
    links.netns.ip("netns", "add", ns)
    try:
        links.netns.ip("-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
        try:
            links._tc(["ip", "netns", "exec", ns], "d0", links.LinkLimits(10_000_000, 5.0))
        except SimError as exc:  # this kernel has no netem: the error says so and how to go on
            assert "sch_netem" in str(exc) and "leave --link-delay out" in str(exc)
            assert "rate 10Mbit" in links.show("d0", ns)  # the rate filter is still there
        else:
            shown = links.show("d0", ns)
            assert "rate 10Mbit" in shown and "delay 5ms" in shown
    finally:
        links.netns.ip("netns", "del", ns)
