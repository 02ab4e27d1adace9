"""What every benchmark shares: interleaved repeats, medians, ratios against a named baseline, ``--json``.

A benchmark names its cases as (group, case) keys, each with a callable. ``interleave`` runs every case
once per repeat, the order rotated each repeat (baseline and candidates alternate, so a load change on a
shared machine hits them alike), and keeps every sample. ``Report`` gives each case's median and its
ratio to the baseline case of its group, as a table on stdout or as one JSON document (``--json``:
figures, baseline names, repeats, raw samples). Progress goes to stderr. Nothing here fails a run on
a figure: benchmarks report, tests assert.

A case callable's result is ignored (the harness times the call) unless it is ``Seconds`` (what the
case timed itself, e.g. without its set-up) or ``Measured`` ({(group, case): seconds}, when one call
measures several things).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Callable, Optional

Key = tuple[str, str]  # (group, case)
Samples = dict[Key, list[float]]
RATIOS = ("speedup", "time")  # speedup: baseline time / time (>1 faster); time: time / baseline time


class Seconds(float):
    """A case's own timing of itself (instead of the harness timing the whole call)."""


class Measured(dict):
    """Several timings from one call of a case: {(group, case): seconds}."""


def arguments(doc: Optional[str], repeats: int, alias: Optional[str] = None) -> argparse.ArgumentParser:
    """A parser with ``--repeats N`` (``alias``: an older spelling kept working) and ``--json``."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    names = ["--repeats"] + ([alias] if alias else [])
    parser.add_argument(*names, dest="repeats", type=int, default=repeats, metavar="N",
                        help="interleaved repeats; medians are reported (default %(default)s)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    return parser


def log(message: str) -> None:
    """Progress, on stderr (stdout holds only the table or the JSON document)."""
    print(message, file=sys.stderr, flush=True)


def timed(fn: Callable[..., Any], *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def per_call(fn: Callable[[], Any], min_s: float = 0.05) -> Callable[[], Seconds]:
    """A case that calls ``fn`` enough times to last about ``min_s`` (calibrated once, so every repeat
    makes the same number of calls); its sample is seconds per call. For calls of well under a ms."""
    number = max(1, int(min_s / max(timed(fn), 1e-9)))

    def case() -> Seconds:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        return Seconds((time.perf_counter() - start) / number)

    return case


def interleave(
    cases: Sequence[tuple[Key, Callable[[], Any]]], repeats: int, warmup: int = 0, rotate: bool = True
) -> Samples:
    """Every case once per repeat (after ``warmup`` unrecorded rounds), order rotated by one each round."""
    samples: Samples = {}
    for i in range(warmup + max(1, repeats)):
        shift = i % len(cases) if rotate and cases else 0
        for key, fn in [*cases[shift:], *cases[:shift]]:
            start = time.perf_counter()
            out = fn()
            took = time.perf_counter() - start
            if i < warmup:
                continue
            got = out if isinstance(out, Measured) else {key: out if isinstance(out, Seconds) else took}
            for k, seconds in got.items():
                samples.setdefault(k, []).append(float(seconds))
    return samples


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool = True) -> Iterator[None]:
    """While measuring for ``--json``, send whatever anything prints (libraries, child processes) to
    stderr, so that stdout carries the JSON document alone."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved_fd, saved = os.dup(1), sys.stdout
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stderr.flush()
        saved.flush()  # what was written to the original object meanwhile still goes to stderr
        sys.stdout = saved
        os.dup2(saved_fd, 1)
        os.close(saved_fd)


def duration(seconds: Optional[float]) -> str:
    """Seconds for people: 3 significant digits in s, ms or µs."""
    if seconds is None:
        return "-"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(seconds) >= scale or unit == "µs":
            value = seconds / scale
            return f"{value:.0f} {unit}" if value >= 1000 else f"{value:.3g} {unit}"
    return f"{seconds:.3g} s"


def dumps(document: Mapping[str, Any]) -> str:
    """JSON with one line per top-level key and per result (compact, and still easy to read)."""

    def rounded(x: Any) -> Any:  # 6 significant digits: beyond them a timing is noise
        if isinstance(x, float):
            return float(f"{x:.6g}")
        if isinstance(x, (list, tuple)):
            return [rounded(v) for v in x]
        return {k: rounded(v) for k, v in x.items()} if isinstance(x, dict) else x

    def one(key: str, value: Any) -> str:
        value = rounded(value)
        if key == "results" and value:
            rows = ",\n".join("  " + json.dumps(r, default=str) for r in value)
            return f' "{key}": [\n{rows}\n ]'
        return f" {json.dumps(key)}: {json.dumps(value, default=str)}"

    return "{\n" + ",\n".join(one(k, v) for k, v in document.items()) + "\n}"


def _rate(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


class Report:
    """The figures of one benchmark run: samples per (group, case), each group's baseline case."""

    def __init__(self, bench: str, baseline: str, repeats: int, ratio: str = "speedup",
                 params: Optional[Mapping[str, Any]] = None):  # fmt: skip
        assert ratio in RATIOS, ratio
        self.bench, self.baseline, self.repeats, self.ratio = bench, baseline, repeats, ratio
        self.params = dict(params or {})
        self.samples: Samples = {}
        self.baselines: dict[str, str] = {}  # group -> its baseline case (default: self.baseline)
        self.rates: dict[Key, tuple[float, str]] = {}  # key -> (work per call, unit)
        self.extra: dict[str, Any] = {}
        self.notes: list[str] = []
        self.skipped: Optional[str] = None

    def add(self, samples: Mapping[Key, list[float]], baseline: Optional[str] = None) -> None:
        """Record ``samples``; ``baseline`` names the baseline case of their groups if not the default."""
        for key, values in samples.items():
            self.samples.setdefault(key, []).extend(values)
            if baseline is not None:
                self.baselines[key[0]] = baseline

    def rate(self, key: Key, work: float, unit: str) -> None:
        """Also report ``work / median`` as ``unit``/s for ``key`` (e.g. tokens per call)."""
        self.rates[key] = (work, unit)

    def skip(self, reason: str) -> None:
        self.skipped = reason

    def _ordered(self) -> list[Key]:
        """Groups in the order first seen, each group's baseline case first."""
        groups = list(dict.fromkeys(g for g, _ in self.samples))
        keys = []
        for g in groups:
            mine = [k for k in self.samples if k[0] == g]
            base = self.baselines.get(g, self.baseline)
            keys += sorted(mine, key=lambda k: k[1] != base)  # stable: the rest keep their order
        return keys

    def rows(self) -> list[dict[str, Any]]:
        medians = {k: statistics.median(v) for k, v in self.samples.items()}
        rows = []
        for group, case in self._ordered():
            values = self.samples[(group, case)]
            base_case = self.baselines.get(group, self.baseline)
            base = medians.get((group, base_case))
            med = medians[(group, case)]
            row: dict[str, Any] = {
                "group": group, "case": case, "baseline": base_case if base is not None else None,
                "median_s": med, "min_s": min(values), "max_s": max(values),
                "speedup": base / med if base is not None and med > 0 else None,
                "time_ratio": med / base if base else None, "samples_s": values,
            }  # fmt: skip
            if (group, case) in self.rates:
                work, unit = self.rates[(group, case)]
                row["rate"] = {"per_s": work / med if med > 0 else None, "unit": f"{unit}/s"}
            rows.append(row)
        return rows

    def document(self) -> dict[str, Any]:
        return {
            "bench": self.bench, "baseline": self.baseline, "repeats": self.repeats,
            "statistic": "median", "ratio": self.ratio, "params": self.params,
            "results": self.rows(), "extra": self.extra, "notes": self.notes,
            "skipped": self.skipped, "cpus": os.cpu_count(), "load_avg": list(os.getloadavg()),
        }  # fmt: skip

    def text(self) -> str:
        if self.skipped:
            return f"{self.bench}: skipped: {self.skipped}\n"
        what = ("baseline time / time, >1 = faster than the baseline" if self.ratio == "speedup"
                else "time / baseline time")  # fmt: skip
        lines = [f"{self.bench}: medians of {self.repeats} interleaved repeat(s); baseline: {self.baseline}; "
                 f"ratio = {what}"]  # fmt: skip
        if self.params:
            lines.append("  " + ", ".join(f"{k} {v}" for k, v in self.params.items()))
        head = ["group", "case", "median", "min", "max", "ratio", "rate"]
        table = [head]
        for r in self.rows():
            ratio = r["speedup"] if self.ratio == "speedup" else r["time_ratio"]
            mark = " (baseline)" if r["case"] == r["baseline"] else ""
            rate = r.get("rate")
            table.append([r["group"], r["case"] + mark, duration(r["median_s"]), duration(r["min_s"]),
                          duration(r["max_s"]),
                          "-" if ratio is None else f"{ratio:.2f}x",
                          f"{_rate(rate['per_s'])} {rate['unit']}" if rate and rate["per_s"] else ""])  # fmt: skip
        if not any(row[-1] for row in table[1:]):
            table = [row[:-1] for row in table]  # no rates: no rate column
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
            if table[0][-1] == "rate":  # the last column, left-aligned, not padded
                cells[-1] = row[-1]
            lines.append("  ".join(cells))
        lines += self.notes
        return "\n".join(line.rstrip() for line in lines) + "\n"

    def emit(self, as_json: bool) -> None:
        """The JSON document or the table, on stdout."""
        if as_json:
            print(dumps(self.document()))
        else:
            print(self.text(), end="")
        sys.stdout.flush()
