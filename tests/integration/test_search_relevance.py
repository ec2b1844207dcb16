"""The real agent with the local report search, the seed loaded: a search result is evidence only
when it names what was searched, so a legitimate company's number or tracking page finds no
reports, and a domain the seeded reports name is still reported as such."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from domain import events as ev
from domain.evidence import collect, tool_reasons
from domain.log import EventMetadata, NewEvent, RecordedEvent
from domain.progress import progress_message
from domain.search_relevance import Searched, names
from infrastructure.event_store import EventStore
from infrastructure.indicators import _SEARCH_NAMES, IndicatorRepository
from infrastructure.seed import load_seed
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from workers.analysis import Agent, run_analysis
from workers.toolbox import build_toolbox

pytestmark = pytest.mark.integration

METADATA = EventMetadata(tenant="relevance", actor="test")
FEDEX = (
    "Your FedEx package 748912345678 is out for delivery today, track at "
    "https://www.fedex.com/fedextrack/?trknbr=748912345678"
)
DELTA = "Delta: flight DL1432 to Atlanta is delayed to 6:40 PM. Questions? Call (800) 221-1212."
NEWSLETTER = "This week's deals from Costco are live, see costco.com/warehouse-savings for details."
PARCELFORCE = (
    "Parcelforce: your parcel could not be delivered. Pay the $3.95 redelivery fee at "
    "https://parcelforcereschedule.icu/pay within 24 hours."
)


@pytest.fixture
async def agent(store: EventStore, settings: Settings) -> AsyncIterator[Agent]:
    await load_seed(store.engine)
    toolbox = build_toolbox(settings.model_copy(update={"exa_api_key": None}), store.engine)
    try:
        yield Agent(TaskLog(store), toolbox.tools, settings)
    finally:
        await toolbox.aclose()


async def analysed(agent: Agent, task_id: str, content: str) -> list[RecordedEvent]:
    submitted = ev.TaskSubmitted(content=content, kind="sms")
    await agent.log.append(task_id, [NewEvent(submitted, METADATA)], 0)
    assert await run_analysis(agent, task_id) == "completed"
    return await agent.log.store.read_stream(task_id)


def web_reasons(stream: list[RecordedEvent]) -> list[ev.Reason]:
    (verdict,) = [r.event for r in stream if isinstance(r.event, ev.VerdictReached)]
    return [reason for reason in verdict.reasons if reason.code == "web_reports"]


@pytest.mark.parametrize(
    ("task_id", "content"),
    [("fedex", FEDEX), ("delta", DELTA), ("costco", NEWSLETTER)],
)
async def test_a_legitimate_message_finds_no_reports(
    agent: Agent, task_id: str, content: str
) -> None:
    stream = await analysed(agent, task_id, content)
    searched = [r.event for r in stream if isinstance(r.event, ev.ToolCallCompleted)]
    assert any(call.tool == "web_search" for call in searched), "the search must have run"
    assert web_reasons(stream) == []


async def test_a_domain_the_reports_name_is_reported_by_the_local_reports(agent: Agent) -> None:
    stream = await analysed(agent, "parcelforce", PARCELFORCE)

    (reason,) = web_reasons(stream)
    assert reason.text.startswith("3 local reports name parcelforcereschedule.icu as a scam, e.g. ")
    assert "https://reports.scamtrail.example/" in reason.text
    (finding,) = [r for r in tool_reasons(collect(stream)) if r.code == "web_reports"]
    assert finding.weight == 0.45
    (completed,) = [
        r
        for r in stream
        if isinstance(r.event, ev.ToolCallCompleted) and r.event.tool == "web_search"
    ]
    assert "local reports" in progress_message(completed)["message"]
    assert progress_message(completed)["step"] == "exa_search"


PHONE = Searched("phone", "+18335550164")


async def test_the_local_search_matches_the_number_in_any_format_and_no_generic_word(
    store: EventStore,
) -> None:
    await load_seed(store.engine)
    repo = IndicatorRepository(store.engine)

    # The seed reports write numbers in E.164; a report added in a national format is found too.
    await add_report(store, "Callback scam", "Scammers call from (833) 555-0164 about a parcel.")
    hits = await repo.search_reports("", 10, names=[Searched("phone", "+18335550164")])
    assert len(hits) >= 2
    assert any(hit.title == "Callback scam" for hit in hits)
    assert all(names(f"{hit.title} {hit.snippet}", PHONE) for hit in hits)
    assert await repo.search_reports("", 5, names=[Searched("domain", "fedex.com")]) == []
    # Without names every word must appear: "scam" alone, in every report, matches nothing.
    assert await repo.search_reports("FedEx redelivery fee", 5) != []
    assert await repo.search_reports("fedex.com FedEx scam", 5) == []


async def add_report(store: EventStore, title: str, body: str) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            sa.text("INSERT INTO scam_reports (title, url, body) VALUES (:t, :u, :b)"),
            {"t": title, "u": f"https://reports.example/{title}", "b": body},
        )


async def test_the_search_for_names_can_read_the_index_of_its_column(store: EventStore) -> None:
    """The index of migration 0012 is on the column the search reads: on a table large enough
    for it (here: sequential scans off), the planner reads it."""
    async with store.engine.begin() as conn:
        await conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = await conn.execute(
            sa.text(f"EXPLAIN {_SEARCH_NAMES.text}"),
            {"names": "'moc.xedef'", "words": "fedex.com", "limit": 5, "whole_body": 500},
        )
        assert "scam_reports_names_idx" in "\n".join(row[0] for row in plan)


async def test_a_search_for_names_computes_no_report_s_words(store: EventStore) -> None:
    """The words are stored with each report: whichever path the planner takes on the seed's
    few hundred reports, the search computes no regular expression over a report (about 0.1 ms
    each, 28 ms for the seed's reports), and it is one statement."""
    await load_seed(store.engine)
    async with store.engine.connect() as conn:
        plan = await conn.execute(
            sa.text(f"EXPLAIN VERBOSE {_SEARCH_NAMES.text}"),
            {"names": "'pot.lhd-lecrap'", "words": "parcel-dhl.top", "limit": 5,
             "whole_body": 500},
        )  # fmt: skip
        assert "regexp_replace" not in "\n".join(row[0] for row in plan)
    repo = IndicatorRepository(store.engine)
    hits = await repo.search_reports("", 5, names=[Searched("domain", "parcel-dhl.top")])
    assert hits, "the seed reports name it"
