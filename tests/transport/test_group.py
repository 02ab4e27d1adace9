"""fan_out: bounded parallelism, per-host results and failures, one GroupError, connection reuse."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from orchestrator.errors import OrchestrateError, TransportError
from orchestrator.transport import GroupError, TransportPool, fan_out
from tests.transport.fake import FakeNode


def _nodes(n):
    return [SimpleNamespace(host=f"10.0.0.{i}", local=False) for i in range(1, n + 1)]


def _pool(opened):
    def factory(node):
        opened.append(node.host)
        if node.host == "10.0.0.3":
            raise TransportError(f"{node.host}: connection refused")
        return FakeNode(node.host, hostname=f"n{node.host[-1]}")

    return TransportPool(factory=factory)


def test_results_and_failures_per_host():
    opened = []
    with _pool(opened) as pool:
        result = fan_out(_nodes(4), lambda t: t.run(["sh", "-c", ""]).host, pool=pool)
    assert result.hosts == ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4")
    assert result.results == {"10.0.0.1": "10.0.0.1", "10.0.0.2": "10.0.0.2", "10.0.0.4": "10.0.0.4"}
    assert list(result.failures) == ["10.0.0.3"] and not result.ok
    with pytest.raises(TransportError):
        result["10.0.0.3"]


def test_raise_on_failure_carries_every_failure():
    def fn(t):
        if t.host.endswith(("2", "4")):
            raise ValueError(f"boom on {t.host}")
        return 1

    result = fan_out(_nodes(4), fn, pool=_pool([]))
    with pytest.raises(GroupError) as err:
        result.raise_on_failure()
    assert set(err.value.failures) == {"10.0.0.2", "10.0.0.3", "10.0.0.4"}
    assert "3 of 4 node(s) failed" in str(err.value) and "boom on 10.0.0.4" in str(err.value)
    assert isinstance(err.value, OrchestrateError) and err.value.exit_code == 1


def test_group_error_keeps_a_common_exit_code():
    result = fan_out(_nodes(3)[2:], lambda t: None, pool=_pool([]))
    with pytest.raises(GroupError) as err:
        result.raise_on_failure()
    assert err.value.exit_code == TransportError.exit_code


def test_all_ok_returns_self():
    result = fan_out(_nodes(2), lambda t: t.host, pool=_pool([]))
    assert result.raise_on_failure() is result and result["10.0.0.2"] == "10.0.0.2"


def test_parallelism_is_bounded():
    lock, running, peak = threading.Lock(), [0], [0]
    release = threading.Event()

    def fn(t):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            if running[0] == 3:
                release.set()
        release.wait(2)
        with lock:
            running[0] -= 1

    nodes = [n for n in _nodes(9) if n.host != "10.0.0.3"]
    result = fan_out(nodes, fn, max_workers=3, pool=_pool([]))
    assert result.ok and peak[0] == 3


def test_pool_reuses_one_connection_per_host_across_fan_outs():
    opened = []
    nodes = _nodes(2)
    with _pool(opened) as pool:
        for _ in range(3):
            fan_out(nodes * 3, lambda t: t.host, pool=pool)  # the same host several times at once
        transports = [pool.get(n) for n in nodes]
    assert sorted(opened) == ["10.0.0.1", "10.0.0.2"]
    assert all(t.closed for t in transports)


def test_a_given_pool_stays_open_until_closed():
    seen = []
    pool = _pool([])
    fan_out(_nodes(2), seen.append, pool=pool)
    assert not any(t.closed for t in seen)
    pool.close()
    assert all(t.closed for t in seen)
