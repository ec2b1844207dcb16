"""Compare every benchmark figure of two checkouts measured in one run: this tree against a
baseline tree (another commit's checkout, e.g. `git worktree add /tmp/before <commit>`).

Runs alternate (baseline, this tree, baseline, ...) so that both see the same machine load over
the run; each figure is printed as min / median / max per tree and the ratio of the medians.

    PYTHONPATH=. python benchmarks/compare.py --baseline /tmp/before [--runs 3] [--only pipeline]

Both trees use this interpreter (the same virtualenv), so only the code differs.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from benchmarks.report import BENCHMARKS, ROOT, ROWS, run


def spread(values: list[float]) -> str:
    return f"{min(values):g} / {statistics.median(values):g} / {max(values):g}"


def main(baseline: Path, runs: int, only: list[str]) -> None:
    names = [name for name in BENCHMARKS if not only or name in only]
    trees = {"baseline": baseline.resolve(), "this tree": ROOT}
    reports: dict[str, dict[str, list[Any]]] = {t: {n: [] for n in names} for t in trees}
    for name in names:
        for _ in range(runs):
            for label, tree in trees.items():
                reports[label][name].append(run(name, tree))
    print(f"{runs} alternating run(s) each; min / median / max")
    print("| benchmark | figure | baseline tree | this tree | ratio of medians |")
    print("| --- | --- | --- | --- | --- |")
    for bench, figure, unit, _target, value, _base in ROWS:
        if bench not in names:
            continue
        before = [value(r) for r in reports["baseline"][bench]]
        after = [value(r) for r in reports["this tree"][bench]]
        ratio = statistics.median(after) / statistics.median(before)
        print(f"| {bench} | {figure} ({unit}) | {spread(before)} | {spread(after)} | {ratio:.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=[], choices=BENCHMARKS)
    arguments = parser.parse_args()
    main(arguments.baseline, arguments.runs, arguments.only)
