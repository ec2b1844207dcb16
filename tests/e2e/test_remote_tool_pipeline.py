"""A remote MCP tool as one of the agent's tools, end to end: the api (in-process) records and
enqueues, a real `scamtrail worker` process configured with SCAMTRAIL_MCP_TOOLS calls the test
tool server (tests/mcp_tool_server.py, a real process over streamable HTTP), and the task's
stream records every attempt. The server counts the calls it really received."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx
import pytest

from domain import events as ev
from domain.log import RecordedEvent
from infrastructure.event_store import EventStore
from tests.e2e.test_agent_pipeline import (
    Workers,
    assert_evidence_is_real,
    assert_reads_agree,
    finished,
    submit,
    wait_for,
)
from tests.e2e.test_agent_pipeline import workers as workers
from tests.mcp_servers import ToolServer
from tests.mcp_servers import tool_servers as tool_servers
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

PARCEL = "URGENT: your parcel is held, pay 1.99 at http://usps-redelivery.top/pay today"


def remote_attempts(stream: list[RecordedEvent]) -> list[tuple[str, str, int, bool, bool]]:
    """(event type, call id, attempt, timed out, will retry) of each remote-tool event."""
    found = []
    calls = ev.ToolCallStarted | ev.ToolCallCompleted | ev.ToolCallFailed
    for r in stream:
        event = r.event
        if not isinstance(event, calls) or event.step != "remote_tool":
            continue
        failure = event if isinstance(event, ev.ToolCallFailed) else None
        timed_out, retry = (failure.timed_out, failure.will_retry) if failure else (False, False)
        found.append((r.type, event.call_id, event.attempt, timed_out, retry))
    return found


async def test_a_remote_tool_is_called_retried_and_recorded_like_a_built_in_one(
    api: httpx.AsyncClient, store: EventStore, workers: Workers, tool_servers: Any
) -> None:
    # Its first call answers isError, its second hangs past the worker's timeout: both are
    # retried, with backoff, and the third attempt is answered.
    server: ToolServer = tool_servers(fail_first=1, hang_first=1)
    workers(mcp_tools=json.dumps([server.entry()]), tool_timeout_s=1.5)
    task_id = await submit(api, PARCEL)
    task = await wait_for(api, task_id, finished, within=60)

    assert (task["status"], task["verdict"]) == ("completed", "scam")
    stream = await store.read_stream(task_id)
    call = "remote_tool:checker:domain:usps-redelivery.top"
    assert remote_attempts(stream) == [
        ("ToolCallStarted", call, 1, False, False),
        ("ToolCallFailed", call, 1, False, True),
        ("ToolCallStarted", call, 2, False, False),
        ("ToolCallFailed", call, 2, True, True),
        ("ToolCallStarted", call, 3, False, False),
        ("ToolCallCompleted", call, 3, False, False),
    ]
    (first_failure,) = [
        r.event for r in stream if isinstance(r.event, ev.ToolCallFailed) and r.event.attempt == 1
    ]
    assert "upstream unavailable" in first_failure.error
    assert server.calls() == {"domain:usps-redelivery.top": 3}, "each attempt, one real call"
    verdict = assert_evidence_is_real(stream)
    (remote,) = [r for r in verdict.reasons if r.code == "remote_checker_risk"]
    completed_seq = next(
        r.version
        for r in stream
        if isinstance(r.event, ev.ToolCallCompleted) and r.event.call_id == call
    )
    assert remote.evidence == (completed_seq,)
    await assert_reads_agree(api, task_id, task)
    timeline = (await api.get(f"/tasks/{task_id}/timeline", params={"limit": 1000})).json()
    steps = {e["step"] for e in timeline["events"] if e["event_type"].startswith("ToolCall")}
    assert "remote_tool" in steps


async def test_a_killed_worker_never_repeats_a_remote_call_that_completed(
    api: httpx.AsyncClient, store: EventStore, workers: Workers, tool_servers: Any
) -> None:
    # Each remote call takes 0.4 s and the worker makes one call at a time, so the kill lands
    # between remote calls; a short job timeout so that arq hands the job to the next worker
    # soon (after analysis_timeout_s + 10 s).
    server: ToolServer = tool_servers(latency_s=0.4)
    entry = server.entry(entities=["url", "domain"])
    slow = {
        "mcp_tools": json.dumps([entry]),
        "tool_concurrency": 1,
        "analysis_timeout_s": 8,
        "tool_timeout_s": 2,
    }
    content = (
        "FINAL NOTICE: unpaid toll. Pay at https://ezpass-tolls.top/pay or http://evil-toll.top/x"
        " or http://paypa1-secure.top/login today"
    )
    first = workers(**slow)
    task_id = await submit(api, content)

    async def a_remote_call_completed() -> bool:
        stream = await store.read_stream(task_id)
        return any(
            isinstance(r.event, ev.ToolCallCompleted) and r.event.step == "remote_tool"
            for r in stream
        )

    await eventually(a_remote_call_completed, within=30, what="a remote call completed")
    first.kill()
    before = await store.read_stream(task_id)
    done_before = {
        r.event.call_id
        for r in before
        if isinstance(r.event, ev.ToolCallCompleted) and r.event.step == "remote_tool"
    }
    assert done_before and not any(isinstance(r.event, ev.TaskCompleted) for r in before)

    workers(**slow)
    task = await wait_for(api, task_id, finished, within=60)

    assert task["status"] == "completed"
    stream = await store.read_stream(task_id)
    calls = server.calls()
    for call_id in done_before:
        key = call_id.removeprefix("remote_tool:checker:")
        assert calls[key] == 1, f"{call_id} completed before the kill but was called again"
    started = Counter(
        r.event.call_id
        for r in stream
        if isinstance(r.event, ev.ToolCallStarted) and r.event.step == "remote_tool"
    )
    completions = Counter(
        r.event.call_id
        for r in stream
        if isinstance(r.event, ev.ToolCallCompleted) and r.event.step == "remote_tool"
    )
    assert set(completions) == set(started) and set(completions.values()) == {1}
    assert len(completions) > len(done_before), "the new worker made the remaining calls"
    # Every real call was recorded as started first; the one attempt the kill may have cut
    # between its start and its answer is made again, nothing else.
    assert sum(calls.values()) <= sum(started.values())
    assert sum(started.values()) - len(completions) <= 1, started
    assert_evidence_is_real(stream)
