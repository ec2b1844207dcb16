"""Run every benchmark several times and write docs/PERFORMANCE.md: one table with each figure,
its target, the baseline measured in the same run, the ratio, the machine and the date. Each
figure is the median over the runs, with the least and greatest value beside it: this machine
is shared, and the spread says how far one run can be trusted.

    PYTHONPATH=. python benchmarks/report.py [--runs 3]   (what `make bench` runs)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = (
    "append", "reads", "pipeline", "sustained", "streaming", "feeds", "idle", "relay_partitions",
)  # fmt: skip

# (benchmark, figure, unit, target, value(report), baseline(report) or None)
Row = tuple[str, str, str, str, Callable[[Any], float], Callable[[Any], float] | None]


def _append(writers: int, batch: int, key: str) -> Callable[[Any], float]:
    def pick(report: Any) -> float:
        (row,) = [
            r for r in report["results"] if r["writers"] == writers and r["batch_size"] == batch
        ]
        return float(row[key])

    return pick


def _socket(count: int, key: str) -> Callable[[Any], float]:
    def pick(report: Any) -> float:
        (row,) = [r for r in report["websocket"] if r["open_sockets"] == count]
        if key == "worst_second_p99_ms":
            return float(max(row["p99_ms_by_second"]))  # ValueError if none: not measured
        value = row["commit_to_client"][key] if key.endswith("_ms") else row[key]
        return float(value)

    return pick


def _partitions(count: int) -> Callable[[Any], float]:
    def pick(report: Any) -> float:
        rows = report["partitions"]
        (row,) = [r for r in rows if r["partitions"] == count and not _on_cluster(r)]
        return float(row["events_per_s"]["median"])

    return pick


def _on_cluster(row: Any) -> bool:
    return "cluster" in row.get("pubsub", "")


def _cluster_publish() -> Callable[[Any], float]:
    def pick(report: Any) -> float:
        (row,) = [r for r in report["partitions"] if _on_cluster(r)]  # ValueError: not measured
        return float(row["events_per_s"]["median"])

    return pick


def _sustained(rate: float, figure: str) -> Callable[[Any], float]:
    def pick(report: Any) -> float:
        (row,) = [s for s in report["steps"] if s["rate_per_s"] == rate]  # ValueError: not run
        value = row[figure] if figure in row else row["cpu_ms_per_analysis"][figure]
        return float(value)

    return pick


def _idle_cpu(mode: str) -> Callable[[Any], float]:
    def pick(report: Any) -> float:
        cpu = report[mode]["idle_cpu"]
        return float(cpu["relay_percent"] + cpu["api_percent"])

    return pick


ROWS: list[Row] = [
    ("append", "events/s, 8 writers, batch 1", "ev/s", ">= 0.8x plain",
     _append(8, 1, "store_events_per_s"), _append(8, 1, "plain_insert_events_per_s")),
    ("append", "events/s, 8 writers, batch 10", "ev/s", ">= 0.8x plain",
     _append(8, 10, "store_events_per_s"), _append(8, 10, "plain_insert_events_per_s")),
    ("append", "events/s, 1 writer, batch 1", "ev/s", "",
     _append(1, 1, "store_events_per_s"), _append(1, 1, "plain_insert_events_per_s")),
    ("reads", "GET /timeline, 1,000 events, p99", "ms", "< 50 ms, <= 3x bare SQL",
     lambda r: r["timeline_1000_events"]["p99_ms"],
     lambda r: r["timeline_1000_events"]["bare_sql"]["p99_ms"]),
    ("reads", "GET /timeline, 1,000 events not yet projected, p99", "ms", "< 50 ms",
     lambda r: r["timeline_1000_events"]["unprojected"]["p99_ms"],
     lambda r: r["timeline_1000_events"]["bare_sql"]["p99_ms"]),
    ("reads", "GET /tasks, 100,000 tasks, p99", "ms", "< 50 ms",
     lambda r: r["task_list_50"]["p99_ms"], lambda r: r["task_list_50"]["bare_sql"]["p99_ms"]),
    ("reads", "projection rebuild", "ev/s", "", lambda r: r["rebuild"]["events_per_s"], None),
    ("pipeline", "analyses/s, 4 jobs (baseline: 1 job)", "/s", "",
     lambda r: r["analyses_per_s"]["4_jobs"], lambda r: r["analyses_per_s"]["1_job"]),
    ("pipeline", "submit -> completed, idle, p95", "ms", "",
     lambda r: r["submit_to_completed_idle"]["p95_ms"], None),
    ("sustained", "submit -> completed p95, 10 analyses/s submitted", "ms", "",
     _sustained(10, "p95_ms"), None),
    ("sustained", "submit -> completed p95, 25 analyses/s submitted", "ms", "",
     _sustained(25, "p95_ms"), None),
    ("sustained", "submit -> completed p95, 50 analyses/s submitted", "ms", "< 1000 ms",
     _sustained(50, "p95_ms"), None),
    ("sustained", "analyses/s completed while 50/s are submitted", "/s", ">= 50",
     _sustained(50, "completed_per_s"), None),
    ("sustained", "submit -> completed p95, 100 analyses/s submitted", "ms", "< 1000 ms",
     _sustained(100, "p95_ms"), None),
    ("sustained", "analyses/s completed while 100/s are submitted", "/s", ">= 100",
     _sustained(100, "completed_per_s"), None),
    ("sustained", "cores busy while 100/s are submitted (load included)", "%", "",
     _sustained(100, "cores_busy_percent"), None),
    ("sustained", "CPU per analysis, api + relay + worker + PostgreSQL + Redis, at 25/s", "ms",
     "", _sustained(25, "system"), None),
    ("sustained", "CPU per analysis in the worker, at 25/s", "ms", "",
     _sustained(25, "worker"), None),
    ("sustained", "CPU per analysis in PostgreSQL, at 25/s", "ms", "",
     _sustained(25, "postgres"), None),
    ("sustained", "analyses/s the cores could carry at that CPU per analysis", "/s", ">= 100",
     lambda r: r["analyses_per_s_ceiling"], None),
    ("streaming", "relay commit -> Redis p99 (baseline: PUBLISH after append)", "ms", "< 20 ms",
     lambda r: r["relay"]["relay_commit_to_redis"]["p99_ms"],
     lambda r: r["relay"]["plain_publish_after_append"]["p99_ms"]),
    ("streaming", "commit -> client p99, 1,000 sockets", "ms", "",
     _socket(1000, "p99_ms"), None),
    ("streaming", "commit -> client p99, 5,000 sockets", "ms", "< 250 ms",
     _socket(5000, "p99_ms"), None),
    ("streaming", "commit -> client p99 in the worst second, 5,000 sockets", "ms", "< 100 ms",
     _socket(5000, "worst_second_p99_ms"), None),
    ("streaming", "commit -> client p99, 10,000 sockets", "ms", "< 250 ms",
     _socket(10000, "p99_ms"), None),
    ("streaming", "commit -> client p99 in the worst second, 10,000 sockets", "ms", "",
     _socket(10000, "worst_second_p99_ms"), None),
    ("streaming", "memory per idle socket (5,000 open)", "KB", "< 40 KB",
     _socket(5000, "rss_kb_per_idle_socket"), None),
    ("streaming", "memory per idle socket, 10,000 open (baseline: bare endpoint)", "KB",
     "<= 1.15x", _socket(10000, "rss_kb_per_idle_socket"),
     lambda r: r["bare_endpoint"]["rss_kb_per_idle_socket"]),
    ("feeds", "import a 50,000-line domain feed (baseline: COPY of its rows)", "s", "",
     lambda r: r["seconds"]["first_import_s"]["median"],
     lambda r: r["seconds"]["plain_copy_s"]["median"]),
    ("feeds", "import the same feed again (every entry refreshed)", "s", "",
     lambda r: r["seconds"]["reimport_s"]["median"], None),
    ("idle", "relay + api CPU while idle (baseline: relay always polling)", "% of a core", "< 1",
     _idle_cpu("doorbell"), _idle_cpu("always_polling")),
    ("idle", "PostgreSQL CPU while idle (baseline: relay always polling)", "% of a core", "",
     lambda r: r["doorbell"]["idle_cpu"]["postgres_percent"],
     lambda r: r["always_polling"]["idle_cpu"]["postgres_percent"]),
    ("idle", "first event after a quiet spell, commit -> Redis p99", "ms", "< 20 ms",
     lambda r: r["doorbell"]["first_event_after_quiet"]["p99_ms"],
     lambda r: r["always_polling"]["first_event_after_quiet"]["p99_ms"]),
    ("relay_partitions", "relay publish, 1 partition, 1 relay", "ev/s", "",
     _partitions(1), None),
    ("relay_partitions", "relay publish, 2 partitions, 2 relays (baseline: 1)", "ev/s", "",
     _partitions(2), _partitions(1)),
    ("relay_partitions", "relay publish, 4 partitions, 4 relays (baseline: 1)", "ev/s", "",
     _partitions(4), _partitions(1)),
    ("relay_partitions", "relay publish to a 3-master Redis Cluster, 1 relay (baseline: one Redis)",
     "ev/s", "", _cluster_publish(), _partitions(1)),
]  # fmt: skip


def run(name: str, tree: Path = ROOT) -> Any:
    """One run of benchmark `name` with `tree`'s code (this checkout by default): its JSON."""
    result = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / f"{name}.py")],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )
    return json.loads(result.stdout[result.stdout.index("{") :])


def main(runs: int) -> None:
    speed = machine_speed()
    write_performance({name: [run(name) for _ in range(runs)] for name in BENCHMARKS}, runs, speed)


def machine_speed() -> float:
    """Seconds this machine takes for a plain Python loop of 10 million additions (the best of
    three): printed beside the figures, so that a reader can tell a slower machine from slower
    code when comparing this page with an earlier one."""
    best = float("inf")
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best, 2)


def write_performance(reports: dict[str, list[Any]], runs: int, speed: float | None = None) -> None:
    """docs/PERFORMANCE.md from `runs` reports of each benchmark (and print it)."""
    lines = [
        "# Performance",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {os.cpu_count()} cores,"
        f" {_memory_gib()} GiB; each figure is the median of {runs} run(s) of `make bench`,"
        " with the least and greatest run in brackets. Baselines are measured in the same run."
        + (f" A Python loop of 10 million additions took {speed} s on it." if speed else ""),
        "",
        "| benchmark | figure | median [min, max] | target | baseline | ratio |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for bench, figure, unit, target, value, baseline in ROWS:
        if not reports.get(bench):
            lines.append(f"| {bench} | {figure} | not measured (every run failed) | {target} | | |")
            continue
        try:
            values = [value(r) for r in reports[bench]]
            base = statistics.median(baseline(r) for r in reports[bench]) if baseline else None
        except (KeyError, ValueError):  # a report from before the figure was measured
            lines.append(f"| {bench} | {figure} | not measured in these runs | {target} | | |")
            continue
        median = statistics.median(values)
        ratio = f"{median / base:.2f}" if base else ""
        shown_base = f"{base:g} {unit}" if base is not None else ""
        shown = f"{median:g} {unit} [{min(values):g}, {max(values):g}]"
        lines.append(f"| {bench} | {figure} | {shown} | {target} | {shown_base} | {ratio} |")
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "PERFORMANCE.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _memory_gib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    main(parser.parse_args().runs)
