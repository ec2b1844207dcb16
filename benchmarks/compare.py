"""Compare every benchmark figure of two checkouts measured in one run: this tree against a
baseline tree (another commit's checkout, e.g. `git worktree add /tmp/before <commit>`).

Runs alternate (baseline, this tree, baseline, ...) so that both see the same machine load over
the run; each figure is printed as min / median / max per tree and the ratio of the medians.

    PYTHONPATH=. python benchmarks/compare.py --baseline /tmp/before [--runs 3] [--only pipeline]

Both trees use this interpreter (the same virtualenv), so only the code differs. The benchmark
database is dropped before every run: each tree migrates its own schema from nothing, and no
run inherits another's tables or statistics.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.common import as_text, bench_database
from benchmarks.report import BENCHMARKS, ROOT, ROWS, machine_speed, run, write_performance


def spread(values: list[float]) -> str:
    return f"{min(values):g} / {statistics.median(values):g} / {max(values):g}"


def drop_bench_databases() -> None:
    """Every database a benchmark makes (`scamtrail_bench`, `scamtrail_bench_streaming`, ...)."""
    url = bench_database()
    server = as_text(url.set(database="postgres"), driver="postgresql")

    async def drop() -> None:
        connection = await asyncpg.connect(server)
        try:
            names = await connection.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", f"{url.database}%"
            )
            for (name,) in names:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(drop())


def measured(name: str, tree: Path) -> Any | None:
    """One run, or None (saying why) if it failed: one failed run does not lose the others."""
    drop_bench_databases()
    try:
        return run(name, tree)
    except subprocess.CalledProcessError as error:
        print(f"{name} on {tree} failed:\n{(error.stderr or '')[-2000:]}", file=sys.stderr)
        return None


def main(baseline: Path, runs: int, only: list[str], write: bool) -> None:
    names = [name for name in BENCHMARKS if not only or name in only]
    trees = {"baseline": baseline.resolve(), "this tree": ROOT}
    reports: dict[str, dict[str, list[Any]]] = {t: {n: [] for n in names} for t in trees}
    for name in names:
        for _ in range(runs):
            for label, tree in trees.items():
                if not (tree / "benchmarks" / f"{name}.py").exists():
                    continue  # a benchmark the baseline tree does not have yet: this tree only
                if (report := measured(name, tree)) is not None:
                    reports[label][name].append(report)
    print(f"{runs} alternating run(s) each; min / median / max")
    print("| benchmark | figure | baseline tree | this tree | ratio of medians |")
    print("| --- | --- | --- | --- | --- |")
    for bench, figure, unit, _target, value, _base in ROWS:
        if bench not in names or not reports["baseline"][bench] or not reports["this tree"][bench]:
            continue
        try:
            before = [value(r) for r in reports["baseline"][bench]]
            after = [value(r) for r in reports["this tree"][bench]]
        except (KeyError, ValueError):  # e.g. a socket count the baseline tree does not run
            print(f"| {bench} | {figure} ({unit}) | not measured by both trees | | |")
            continue
        ratio = statistics.median(after) / statistics.median(before)
        print(f"| {bench} | {figure} ({unit}) | {spread(before)} | {spread(after)} | {ratio:.3f} |")
    if write and not only:
        write_performance(reports["this tree"], runs, machine_speed())  # as `make bench` would


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=[], choices=BENCHMARKS)
    parser.add_argument(
        "--write", action="store_true", help="also write docs/PERFORMANCE.md from this tree's runs"
    )
    arguments = parser.parse_args()
    main(arguments.baseline, arguments.runs, arguments.only, arguments.write)
