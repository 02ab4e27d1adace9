"""`push`: put files on nodes, skipping what they hold, resuming what they half hold, relaying
between nodes where possible, and retrying whatever failed with direct pushes.

Phases: shared-storage check (a verified shared destination gets its files once), scan every node
in parallel (a node that holds every file as it is says so in one short command; any other scan opens
the node's receiver session, which the route then uses), plan routes
(relay chains and direct pushes), run the routes in parallel (bounded), then re-scan and push
directly to every node whose route failed (one retry round).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from threading import Event
from typing import Any, Callable, Optional, Sequence

from orchestrator.errors import InputError, OrchestrateError
from orchestrator.transfer import remote, sender
from orchestrator.transfer.manifest import Item, prefix_sha256
from orchestrator.transfer.model import MODES, RELAY_HOPS, NodeReport, PushOptions, PushResult, Target
from orchestrator.transfer.progress import ProgressBars
from orchestrator.transfer.routes import NodeNeeds, Route, needs_of, plan_routes, stream_items
from orchestrator.transfer.shared import shared_root, verify_shared
from orchestrator.transport import TransportPool, connect

SCAN_FANOUT = 32  # nodes scanned at once (a scan is small; a relay chain holds every session open anyway)


class _PrefixCache:
    """Memoized source-prefix hashes (several nodes may hold the same ``.part``)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int], str] = {}

    def __call__(self, item: Item, size: int, digest: str) -> bool:
        if size == item.entry.size:
            return digest == item.entry.sha256
        key = (str(item.source), size)
        if key not in self._known:
            self._known[key] = prefix_sha256(item.source, size)
        return self._known[key] == digest


def _parallel(
    fn: Callable[[Any], Any], values: Sequence[Any], workers: int, cancel: Optional[Event] = None
) -> list[Any]:
    """``fn`` over ``values`` in threads; an interrupt (Ctrl-C) sets ``cancel`` so running streams stop."""
    ex = ThreadPoolExecutor(max_workers=max(1, min(workers, len(values) or 1)))
    try:
        return list(ex.map(fn, values))
    except BaseException:
        if cancel is not None:
            cancel.set()  # receivers keep their .part files: the next push resumes them
        raise
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _collapse_shared(
    pool: Any, targets: list[Target], opts: PushOptions
) -> tuple[list[Target], list[NodeReport], list[str]]:
    """Targets on a verified shared path become one target (on the first node) holding all their files."""
    keep, reports, warnings = [], [], []
    groups: dict[str, list[Target]] = {}
    for t in targets:
        root = shared_root(t.dest, opts.shared_paths)
        (groups.setdefault(t.dest, []) if root else keep).append(t)
    for dest, group in groups.items():
        check = verify_shared(pool, [t.node for t in group], dest) if len(group) > 1 else None
        if check is None or not check.shared:
            if check is not None:
                warnings.append(f"{dest} is declared shared but {', '.join(check.not_seen_by)} do not see files "
                                f"written by {check.writer}: pushing to every node")  # fmt: skip
            keep += group
            continue
        items = {i.entry.rel: i for t in group for i in t.items}
        exclusive = {f: k for t in group for f, k in t.exclusive}
        keep.append(replace(group[0], items=tuple(items.values()), exclusive=tuple(exclusive.items())))
        reports += [NodeReport(t.host, dest, "shared", files=len(t.items), skipped=len(t.items), ok=True)
                    for t in group[1:]]  # fmt: skip
    return keep, reports, warnings


def _scan(
    pool: Any, targets: Sequence[Target], opts: PushOptions, prefix: _PrefixCache
) -> list[NodeNeeds | NodeReport]:
    def one(t: Target) -> NodeNeeds | NodeReport:
        session = None
        try:
            transport = pool.get(t.node)
            if not opts.verify and remote.held(transport, t):  # nothing to send: no session
                return NodeReport(t.host, t.dest, "none", files=len(t.items), skipped=len(t.items), ok=True)
            session = remote.Session(transport, t)
            return needs_of(t, session.scan(transport, opts.verify), prefix, session)
        except (OSError, OrchestrateError) as exc:
            if session is not None:
                session.close()
            return NodeReport(t.host, t.dest, "scan", files=len(t.items), error=str(exc))

    return _parallel(one, targets, max(opts.max_parallel, SCAN_FANOUT))


def _run_routes(pool: Any, routes: list[Route], opts: PushOptions, bars: ProgressBars,
                limit: sender.RateLimit) -> tuple[list[NodeReport], int]:  # fmt: skip
    def one(route: Route) -> tuple[list[NodeReport], int]:
        hosts = " -> ".join(n.target.host for n in route.nodes)
        total = sum(item.entry.size - offset for item, offset in stream_items(route))
        if route.kind == "relay":
            return sender.run_chain(route, limit, bars.bar(hosts, total), opts.timeout, opts.relay_hop)
        return sender.run_direct(route, limit, bars.bar(hosts, total), opts.timeout)

    results = _parallel(one, routes, opts.max_parallel, limit.cancel)
    return [r for reports, _ in results for r in reports], sum(sent for _, sent in results)


def _idle(n: NodeNeeds) -> NodeReport:
    t = n.target
    return NodeReport(t.host, t.dest, "none", files=len(t.items), skipped=len(n.same), ok=True)


def _round(pool: Any, targets: Sequence[Target], opts: PushOptions, mode: str, bars: ProgressBars,
           limit: sender.RateLimit, prefix: _PrefixCache) -> tuple[list[NodeReport], int, list[list[str]]]:  # fmt: skip
    scanned = _scan(pool, targets, opts, prefix)
    ended = [s for s in scanned if isinstance(s, NodeReport)]  # failed scans, nodes holding everything
    needs = [s for s in scanned if isinstance(s, NodeNeeds)]
    try:
        for n in needs:
            if not n.busy:
                n.session.done()  # nothing to do there: the receiver ends
        routes = plan_routes(needs, mode)
        reports, sent = _run_routes(pool, routes, opts, bars, limit)
    finally:
        for n in needs:
            n.session.close()
    chains = [[n.target.host for n in r.nodes] for r in routes if r.kind == "relay"]
    return ended + reports + [_idle(n) for n in needs if not n.busy], sent, chains


def push(
    targets: Sequence[Target], options: Optional[PushOptions] = None, pool: Optional[TransportPool] = None
) -> PushResult:
    """Put every target's files on its node (see the module docstring); never raises for a node's failure:
    each node's outcome is in the result (``result.ok``)."""
    options = options or PushOptions()
    if options.mode not in MODES:
        raise InputError(f"push mode must be one of {', '.join(MODES)}, not {options.mode!r}")
    if options.relay_hop not in RELAY_HOPS:
        raise InputError(f"relay hop must be one of {', '.join(RELAY_HOPS)}, not {options.relay_hop!r}")
    start = time.monotonic()
    own = pool is None
    pool = pool or TransportPool(factory=partial(connect, lazy=True))  # sessions may need no paramiko
    limit, prefix = sender.RateLimit(options.limit_rate), _PrefixCache()
    try:
        with ProgressBars(options.progress) as bars:
            targets_, shared, warnings = _collapse_shared(pool, list(targets), options)
            reports, sent, chains = _round(pool, targets_, options, options.mode, bars, limit, prefix)
            failed = {(r.host, r.dest): r for r in reports if not r.ok}
            if failed:
                retry = [t for t in targets_ if (t.host, t.dest) in failed]
                again, more, _ = _round(pool, retry, options, "direct", bars, limit, prefix)
                for r in again:
                    first = failed[(r.host, r.dest)]
                    r.route = f"{first.route}, then {r.route}"
                    r.bytes_written += first.bytes_written
                    r.error = None if r.ok else f"{r.error} (first try: {first.error})"
                    if r.ok:  # what made it slower than it should have been
                        warnings.append(
                            f"{r.host}: the {first.route} failed ({first.error}); pushed directly"
                        )
                reports = [r for r in reports if r.ok] + again
                sent += more
    finally:
        if own:
            pool.close()
    order = {t.host: k for k, t in enumerate(targets)}
    nodes = sorted(reports + shared, key=lambda r: order.get(r.host, len(order)))
    return PushResult(nodes, sent, time.monotonic() - start, chains, warnings)
