"""Verdict accuracy on data we did not write, beside peer tools, printed as JSON.

    PYTHONPATH=. .venv/bin/python benchmarks/verdicts.py [--split test|train] [--no-peers]
        [--no-lookups] [--limit N]

Each item goes through the agent's own steps in process: entity extraction, the planned tool
calls (domain reputation and phone validation always; with look-ups also the scam database and
the local report search on PostgreSQL with the seed loaded), and the rules reasoner. The stream
it reasons on is built exactly as the worker records it, so this measures the analysis, not
the queue.

Data (benchmarks/datasets.py): the SpamAssassin public mail corpus (spam vs ham), a sample of
ordinary sites' domains, and the project's own corpus. Only the `test` split is reported by
default; tuning looks at `train` alone (`--split train`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from benchmarks.datasets import CACHE, Item, corpus, legitimate_domains, spam_assassin
from domain import events as ev
from domain.extraction import extract_entities
from domain.log import EventMetadata, LogCursor, RecordedEvent
from domain.planning import plan_tool_calls
from domain.reasoning import reason
from domain.tools import Tool, ToolError
from infrastructure.tools.domain_reputation import DomainReputation
from infrastructure.tools.phone_validator import PhoneValidator

_META = EventMetadata(tenant="bench", actor="bench")


async def analyse(item: Item, tools: dict[str, Tool]) -> ev.VerdictReached:
    """The verdict the rules reasoner reaches for `item`, with the tools in `tools`."""
    return reason(await build_stream(item, tools))


async def build_stream(item: Item, tools: dict[str, Tool]) -> list[RecordedEvent]:
    """The stream the worker would record for `item`: submission, extraction, tool calls."""
    kind: Any = item.kind
    events: list[ev.DomainEvent] = [ev.TaskSubmitted(content=item.content, kind=kind)]
    entities = extract_entities(item.content, kind)
    events.append(ev.EntitiesExtracted(entities=entities))
    for call in plan_tool_calls(entities, kind=kind, client_metadata={}):
        tool = tools.get(call.tool)
        if tool is None:
            continue
        try:
            output = await tool(call.input)
        except ToolError as error:
            events.append(
                ev.ToolCallFailed(
                    call_id=call.call_id, tool=call.tool, step=call.step, error=str(error)
                )
            )
            continue
        events.append(
            ev.ToolCallCompleted(
                call_id=call.call_id, tool=call.tool, step=call.step, output=output
            )
        )
    return _stream(item.id, events)


def _stream(stream_id: str, events: Sequence[ev.DomainEvent]) -> list[RecordedEvent]:
    now = datetime.now(UTC)
    return [
        RecordedEvent(
            stream_id, version, version, LogCursor(1, version), uuid.uuid4(), now, _META, event
        )
        for version, event in enumerate(events, start=1)
    ]


# --- metrics ---------------------------------------------------------------------------------


def auc(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve (ties count half), by ranks."""
    pairs = sorted(zip(scores, labels, strict=True))
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    rank_sum, index = 0.0, 0
    while index < len(pairs):
        end = index
        while end < len(pairs) and pairs[end][0] == pairs[index][0]:
            end += 1
        mean_rank = (index + 1 + end) / 2
        rank_sum += mean_rank * sum(1 for _, label in pairs[index:end] if label)
        index = end
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _rates(labels: Sequence[bool], flagged: Sequence[bool]) -> dict[str, float | None]:
    tp = sum(1 for y, f in zip(labels, flagged, strict=True) if y and f)
    fp = sum(1 for y, f in zip(labels, flagged, strict=True) if not y and f)
    positives, negatives = sum(labels), len(labels) - sum(labels)
    return {
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / positives, 4) if positives else None,
        "false_positive_rate": round(fp / negatives, 4) if negatives else None,
    }


def calibration(labels: Sequence[bool], probabilities: Sequence[float]) -> dict[str, float]:
    """Brier score and expected calibration error (10 equal-width bins)."""
    n = len(labels)
    brier = sum((p - float(y)) ** 2 for y, p in zip(labels, probabilities, strict=True)) / n
    ece = 0.0
    for low in range(10):
        members = [
            (y, p)
            for y, p in zip(labels, probabilities, strict=True)
            if low / 10 <= p < (low + 1) / 10 or (low == 9 and p == 1.0)
        ]
        if members:
            mean_p = sum(p for _, p in members) / len(members)
            rate = sum(1 for y, _ in members if y) / len(members)
            ece += len(members) / n * abs(mean_p - rate)
    return {"brier": round(brier, 4), "ece": round(ece, 4)}


def summarise(
    labels: Sequence[bool],
    verdicts: Sequence[str],
    scores: Sequence[float],
    probabilities: Sequence[float],
) -> dict[str, Any]:
    area = auc(labels, scores)
    return {
        "items": len(labels),
        "positives": sum(labels),
        "scam": _rates(labels, [v == "scam" for v in verdicts]),
        "scam_or_suspicious": _rates(labels, [v != "safe" for v in verdicts]),
        "auc": round(area, 4) if area is not None else None,
        **calibration(labels, probabilities),
    }


# --- runs --------------------------------------------------------------------------------------


async def run_scamtrail(items: Sequence[Item], tools: dict[str, Tool]) -> dict[str, Any]:
    verdicts, scores, probabilities, latencies = [], [], [], []
    for item in items:
        started = time.perf_counter()
        verdict = await analyse(item, tools)
        latencies.append(time.perf_counter() - started)
        verdicts.append(verdict.verdict)
        scores.append(verdict.score)
        probabilities.append(verdict.score)
    labels = [item.scam for item in items]
    result = summarise(labels, verdicts, scores, probabilities)
    result["p50_latency_ms"] = round(statistics.median(latencies) * 1000, 3)
    return result


def run_peer(items: Sequence[Item], scores: Sequence[float | None]) -> dict[str, Any]:
    kept = [(item.scam, s) for item, s in zip(items, scores, strict=True) if s is not None]
    labels = [y for y, _ in kept]
    values = [s for _, s in kept]
    area = auc(labels, values)
    return {
        "items": len(kept),
        "auc": round(area, 4) if area is not None else None,
        "flagged_at_0.5": _rates(labels, [s >= 0.5 for s in values]) if kept else None,
        **(calibration(labels, values) if kept else {}),
    }


async def lookup_tools() -> tuple[dict[str, Tool], Callable[[], Any]]:
    """The scam database and local report search on a benchmark database with the seed."""
    from benchmarks.common import as_text, bench_database
    from infrastructure.database import create_engine, ensure_database, migrate_sync
    from infrastructure.seed import load_seed
    from infrastructure.settings import load_settings
    from workers.toolbox import build_toolbox

    url = as_text(bench_database("scamtrail_bench_verdicts"))
    await ensure_database(url)
    await asyncio.to_thread(migrate_sync, url)
    settings = load_settings(database_url=url)
    engine = create_engine(settings, pool_size=2, application_name="scamtrail-bench")
    await load_seed(engine)
    toolbox = build_toolbox(settings, engine)

    async def close() -> None:
        await toolbox.aclose()
        await engine.dispose()

    return dict(toolbox.tools), close


def datasets(split: str, limit: int | None) -> dict[str, list[Item]]:
    chosen = {
        "corpus": corpus(),
        "spamassassin": spam_assassin(),
        "legitimate_domains": legitimate_domains(),
    }
    return {name: [i for i in items if i.split == split][:limit] for name, items in chosen.items()}


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("test", "train"), default="test")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-lookups", action="store_true")
    args = parser.parse_args(argv)

    data = datasets(args.split, args.limit)
    offline: dict[str, Tool] = {
        "domain_reputation": DomainReputation(),
        "phone_validator": PhoneValidator(),
    }
    report: dict[str, Any] = {"split": args.split, "datasets": {}}
    with_lookups: dict[str, Tool] | None = None
    close: Callable[[], Any] | None = None
    if not args.no_lookups:
        with_lookups, close = await lookup_tools()
    try:
        for name, items in data.items():
            entry: dict[str, Any] = {
                "scamtrail_without_lookups": await run_scamtrail(items, offline),
            }
            if with_lookups is not None:
                entry["scamtrail_with_lookups"] = await run_scamtrail(items, with_lookups)
            report["datasets"][name] = entry
    finally:
        if close is not None:
            await close()
    if not args.no_peers:
        from benchmarks.peers import score_with_peers

        for name, items in data.items():
            payload = [{"kind": i.kind, "content": i.content} for i in items]
            for peer in score_with_peers(payload, CACHE):
                result = run_peer(items, peer.scores)
                result.update(
                    version=peer.version, seconds=round(peer.seconds, 2), error=peer.error
                )
                report["datasets"][name][f"peer:{peer.name}"] = result
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1:])), indent=2))
