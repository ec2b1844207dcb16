"""Entity extraction on hostile 64 KB inputs against ordinary prose: per input, the CPU time of
five extractions (min, median, max, in ms) and the median's ratio to ordinary prose, as JSON.

Run: .venv/bin/python -m benchmarks.adversarial
"""

from __future__ import annotations

import json
import statistics
import time

from domain.extraction import extract_entities
from tests.unit.test_extraction_adversarial import _PROSE, ADVERSARIAL, fill

RUNS = 5


def timings(text: str) -> list[float]:
    out = []
    for _ in range(RUNS):
        began = time.process_time()
        extract_entities(text, "text")
        out.append((time.process_time() - began) * 1000)
    return out


def main() -> None:
    prose = fill(_PROSE)
    extract_entities(prose, "text")  # compile and cache the patterns first
    base = timings(prose)
    report: dict[str, dict[str, float]] = {}
    for name, text in {"ordinary_prose": prose, **ADVERSARIAL}.items():
        runs = base if name == "ordinary_prose" else timings(text)
        report[name] = {
            "min_ms": round(min(runs), 1),
            "median_ms": round(statistics.median(runs), 1),
            "max_ms": round(max(runs), 1),
            "ratio_to_prose": round(statistics.median(runs) / statistics.median(base), 2),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
