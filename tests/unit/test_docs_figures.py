"""The docs quote no measurement of their own: a latency, a rate or a throughput in README.md or
docs/ is one that docs/PERFORMANCE.md (written by `make bench`) holds, so the two cannot drift
apart. Settings and limits ("10 s", "64 KB") are not measurements and are not checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
# A figure with a unit only measurements use: milliseconds, events or analyses per second.
MEASUREMENT = re.compile(r"(\d[\d,]*(?:\.\d+)?) ?(ms|ev/s|events/s|analyses/s)\b")
OWN_FIGURES = {"PERFORMANCE.md", "VERDICTS.md"}  # written by the benchmarks themselves


def test_every_measured_figure_in_the_docs_is_one_performance_md_holds() -> None:
    performance = (ROOT / "docs" / "PERFORMANCE.md").read_text()
    held = {number.replace(",", "") for number, _ in MEASUREMENT.findall(performance)}
    held |= set(re.findall(r"\d+(?:\.\d+)?", performance))
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    stray = [
        f"{path.name}: {number} {unit}"
        for path in documents
        if path.name not in OWN_FIGURES
        for number, unit in MEASUREMENT.findall(path.read_text())
        if number.replace(",", "") not in held
    ]
    assert stray == [], "quote these from docs/PERFORMANCE.md (make bench) or drop them"
