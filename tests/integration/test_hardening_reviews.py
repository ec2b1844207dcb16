"""Analysts reviewing one task at once all land: a review that meets another's append re-reads
the task and tries again. Reviews per task are bounded (`max_reviews_per_task`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import create_app
from infrastructure.event_store import EventStore
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from tests.auth import bearer
from tests.integration.test_task_reads import finished_run, make_task

pytestmark = pytest.mark.integration


@pytest.fixture
def task_log(store: EventStore) -> TaskLog:
    return TaskLog(store)


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://scamtrail", headers=bearer()
        ) as client:
            yield client


@pytest.fixture
async def few_reviews(app_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(app_settings.model_copy(update={"max_reviews_per_task": 3})):
        yield client


# 30: more analysts at once than a small fixed number of retries could absorb, so that some reviews
# ran out of retries and were 409.
@pytest.mark.parametrize("analysts", [10, 30])
async def test_concurrent_reviews_of_one_task_all_land(
    api: httpx.AsyncClient, task_log: TaskLog, analysts: int
) -> None:
    await make_task(task_log, "busy", *finished_run("scam"))
    notes = [f"analyst {i} agrees" for i in range(analysts)]
    responses = await asyncio.gather(
        *(
            api.post(
                "/tasks/busy/reviews",
                json={"decision": "confirm", "note": note},
                headers=bearer(sub=f"analyst-{i}"),
            )
            for i, note in enumerate(notes)
        )
    )
    assert [r.status_code for r in responses] == [201] * analysts, [r.text for r in responses]
    reviews = (await api.get("/tasks/busy/audit")).json()["reviews"]
    assert sorted(r["note"] for r in reviews) == sorted(notes)
    timeline = (await api.get("/tasks/busy/timeline", params={"limit": 100})).json()
    reviewed = [e for e in timeline["events"] if e["event_type"] == "VerdictReviewed"]
    assert sorted(e["actor"] for e in reviewed) == sorted(
        f"user:analyst-{i}" for i in range(analysts)
    )


async def test_reviews_past_the_bound_are_refused_with_a_reason(
    few_reviews: httpx.AsyncClient, task_log: TaskLog
) -> None:
    await make_task(task_log, "bounded", *finished_run("scam"))
    review = {"decision": "confirm", "note": "ok"}
    for _ in range(3):
        assert (await few_reviews.post("/tasks/bounded/reviews", json=review)).status_code == 201
    refused = await few_reviews.post("/tasks/bounded/reviews", json=review)
    assert refused.status_code == 409, refused.text
    assert "3 reviews" in refused.text
    reviews = (await few_reviews.get("/tasks/bounded/audit")).json()["reviews"]
    assert len(reviews) == 3
