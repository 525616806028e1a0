"""Timing and reporting for the benchmark: percentiles over repeated runs and one table."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class Timing:
    samples_ms: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95(self) -> float:
        return self.percentile(0.95)

    @property
    def p99(self) -> float:
        return self.percentile(0.99)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(fn: Callable[[], object], *, repeat: int, warmup: int = 2) -> Timing:
    """Run `fn` warmup + repeat times; the repeat runs' wall times in milliseconds."""
    return measure_alternating([fn], repeat=repeat, warmup=warmup)[0]


def measure_alternating(
    fns: Sequence[Callable[[], object]], *, repeat: int, warmup: int = 2
) -> list[Timing]:
    """Time `fns` in turn, one call of each per round (warmup rounds untimed): what a ratio
    between them judges is then the code, not which minute of a shared machine each ran in."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, out in zip(fns, samples, strict=True):
            started = time.perf_counter()
            fn()
            out.append((time.perf_counter() - started) * 1000)
    return [Timing(out) for out in samples]


@dataclass
class Row:
    work: str
    target: str
    measured: str
    baseline: str = "—"
    ratio: str = "—"
    ok: bool | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT met", None: "—"}[self.ok]


def ms(value: float) -> str:
    return f"{value:,.1f} ms"


def render_table(rows: list[Row]) -> str:
    header = (
        "| work | target | measured | baseline | ratio | verdict |\n"
        "| --- | --- | --- | --- | --- | --- |"
    )
    lines = [
        f"| {r.work} | {r.target} | {r.measured} | {r.baseline} | {r.ratio} | {r.verdict} |"
        for r in rows
    ]
    return "\n".join([header, *lines])


def child_process(script: str, *args: str, **env: str) -> subprocess.Popen:
    """`script` run by this interpreter in a child process, as the task worker would run
    the job it names: production settings, this process's environment plus `env`, its
    output captured (the script prints its result as the last line)."""
    return subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "false", **env},
    )
