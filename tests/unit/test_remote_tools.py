"""Remote MCP tools as agent tools, in pure code: SCAMTRAIL_MCP_TOOLS is parsed and refused as
it should be, remote calls are planned after the built-in ones with stable ids, a remote answer
is checked against its contract, the reasoner weighs a remote risk within its bound, the audit
shows it, and the worker's loop records, retries (or not) and never repeats a remote call."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from api.cli import app
from api.errors import EXIT_BAD_INPUT
from domain import events as ev
from domain.audit import build_audit
from domain.decider import CallTool, Record, next_actions
from domain.evidence import REMOTE_MAX_WEIGHT
from domain.extraction import extract_entities
from domain.log import EventMetadata, NewEvent
from domain.planning import MAX_REMOTE_CALLS, plan_tool_calls
from domain.reasoning import STRONG_WEIGHT, reason
from domain.task import TaskState, fold
from domain.tools import RemoteTool, ToolError, UnusableAnswer, remote_output
from infrastructure.memory_store import InMemoryEventStore, InMemoryTaskLog
from infrastructure.settings import McpToolConfig, load_settings, settings_problems
from tests.factories import recorded_stream
from workers.analysis import Agent, run_analysis

pytestmark = pytest.mark.unit

CONTENT = "URGENT: verify your account at http://paypa1-login.top/verify or call +1 900 555 0199"
ENTITIES = extract_entities(CONTENT, "sms", default_region="US")
URLSCAN = RemoteTool(name="urlscan", entities=("url", "domain"))
ENTRY = {
    "name": "urlscan",
    "url": "http://127.0.0.1:9/mcp",
    "tool": "scan",
    "entities": ["url", "domain"],
    "headers": {"X-Api-Key": "s3cret-key"},
}


# --- settings ----------------------------------------------------------------------------------


def test_the_variable_is_a_json_list_of_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCAMTRAIL_MCP_TOOLS", json.dumps([ENTRY]))
    (tool,) = load_settings().mcp_tools
    assert (tool.name, tool.url, tool.tool, tool.entities) == (
        "urlscan",
        "http://127.0.0.1:9/mcp",
        "scan",
        ("url", "domain"),
    )
    assert tool.headers["X-Api-Key"].get_secret_value() == "s3cret-key"
    assert "s3cret-key" not in repr(tool), "header values stay out of reprs and logs"
    monkeypatch.setenv("SCAMTRAIL_MCP_TOOLS", "")
    assert load_settings().mcp_tools == []
    monkeypatch.delenv("SCAMTRAIL_MCP_TOOLS")
    assert load_settings().mcp_tools == [], "none by default"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not json", "SCAMTRAIL_MCP_TOOLS: not JSON"),
        ('{"name": "urlscan"}', "SCAMTRAIL_MCP_TOOLS: Input should be a valid list"),
        (json.dumps([{**ENTRY, "name": "web_search"}]), "'web_search' is a built-in tool's"),
        (json.dumps([ENTRY, ENTRY]), "'urlscan' is given twice"),
        (json.dumps([{**ENTRY, "url": "ftp://host/mcp"}]), "[0].url: url must be an http"),
        (json.dumps([{**ENTRY, "entities": ["amount"]}]), "[0].entities[0]: Input should be"),
        (json.dumps([{**ENTRY, "entities": []}]), "[0].entities: Tuple should have at least"),
        (json.dumps([{**ENTRY, "name": "Bad Name"}]), "[0].name: String should match"),
        (json.dumps([{**ENTRY, "tool": ""}]), "[0].tool: String should have at least"),
        (json.dumps([{**ENTRY, "surprise": 1}]), "[0].surprise: Extra inputs are not permitted"),
    ],
)
def test_a_bad_configuration_is_refused_in_one_line_that_names_it(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("SCAMTRAIL_MCP_TOOLS", value)
    with pytest.raises(ValidationError) as refused:
        load_settings()
    line = settings_problems(refused.value)
    assert "\n" not in line and problem in line, line
    assert "s3cret-key" not in line, "never the values: headers may hold keys"


def test_a_worker_with_a_bad_configuration_refuses_to_start_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCAMTRAIL_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("SCAMTRAIL_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("SCAMTRAIL_MCP_TOOLS", json.dumps([{**ENTRY, "name": "scam_database"}]))
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    (line,) = result.output.strip().splitlines()
    assert line == (
        "invalid settings: SCAMTRAIL_MCP_TOOLS: tool name 'scam_database' is a built-in tool's;"
        " choose another"
    )


# --- planning and deciding ---------------------------------------------------------------------


def test_remote_calls_come_after_the_built_in_plan_which_stays_as_it_was() -> None:
    built_in = plan_tool_calls(ENTITIES, kind="sms", client_metadata={}, tenant="acme")
    plan = plan_tool_calls(
        ENTITIES, kind="sms", client_metadata={}, tenant="acme", remote_tools=[URLSCAN]
    )
    assert plan[: len(built_in)] == built_in
    remote = plan[len(built_in) :]
    assert [(c.tool, c.step, c.input) for c in remote] == [
        ("urlscan", "remote_tool", {"kind": "url", "value": "http://paypa1-login.top/verify"}),
        ("urlscan", "remote_tool", {"kind": "domain", "value": "paypa1-login.top"}),
    ], "one call per entity of its kinds, never the tenant"
    assert [c.call_id for c in remote] == [
        "remote_tool:urlscan:url:http://paypa1-login.top/verify",
        "remote_tool:urlscan:domain:paypa1-login.top",
    ]
    again = plan_tool_calls(
        ENTITIES, kind="sms", client_metadata={}, tenant="acme", remote_tools=[URLSCAN]
    )
    assert again == plan, "the same ids on every run: a resumed worker recognises its calls"


def test_each_remote_tool_has_its_calls_capped_and_ids_of_its_own() -> None:
    links = " ".join(f"http://site{i}.example/x" for i in range(20))
    entities = extract_entities(links, "sms")
    phones = RemoteTool(name="numbers", entities=("phone",))
    plan = plan_tool_calls(entities, kind="sms", client_metadata={}, remote_tools=[URLSCAN, phones])
    remote = Counter(c.tool for c in plan if c.step == "remote_tool")
    assert remote == {"urlscan": MAX_REMOTE_CALLS}, "no phone in the message: no phone call"
    assert len({c.call_id for c in plan}) == len(plan)


def test_the_decider_asks_for_remote_calls_with_the_same_budgets() -> None:
    settings = load_settings(mcp_tools=[{**ENTRY}], tool_concurrency=64)
    so_far = [
        ev.TaskSubmitted(content=CONTENT, kind="sms"),
        ev.AnalysisStarted(run=1, max_runs=5),
        ev.EntitiesExtracted(entities=ENTITIES),
    ]
    (announce,) = next_actions(must(fold(recorded_stream(*so_far))), settings, run=1)
    assert isinstance(announce, Record) and isinstance(announce.event, ev.ProgressReported)
    assert "urlscan" in announce.event.message
    state = must(fold(recorded_stream(*so_far, announce.event)))
    calls = [a for a in next_actions(state, settings, run=1) if isinstance(a, CallTool)]
    remote = [a for a in calls if a.call.step == "remote_tool"]
    assert [a.call.tool for a in remote] == ["urlscan", "urlscan"]
    assert all(a.attempt == 1 and a.may_retry for a in remote)


def must(state: TaskState | None) -> TaskState:
    assert state is not None
    return state


# --- the output contract -----------------------------------------------------------------------


def test_an_answer_that_meets_the_contract_is_kept_whole() -> None:
    answer = {
        "risk": 0.7,
        "signals": [{"code": "listed", "detail": "on a blocklist", "weight": 0.7}],
        "scanned_at": "2026-01-01",
    }
    assert remote_output(answer) == answer
    assert remote_output({"risk": 0, "signals": []}) == {"risk": 0, "signals": []}


@pytest.mark.parametrize(
    "answer",
    [
        [],
        "risky",
        {"signals": []},
        {"risk": "0.5", "signals": []},
        {"risk": True, "signals": []},
        {"risk": 1.5, "signals": []},
        {"risk": 0.5},
        {"risk": 0.5, "signals": [{"code": "x", "detail": "y"}]},
        {"risk": 0.5, "signals": [{"code": "x", "detail": "y", "weight": 2}]},
        {"risk": 0.5, "signals": [], "blob": "x" * 70_000},
        {"risk": float("nan"), "signals": []},
    ],
)
def test_any_other_answer_is_unusable(answer: Any) -> None:
    with pytest.raises(UnusableAnswer):
        remote_output(answer)
    assert issubclass(UnusableAnswer, ToolError)


# --- reasoning and the audit -------------------------------------------------------------------


def remote_answer(risk: float, tool: str = "urlscan", value: str = "paypa1-login.top") -> Any:
    signal = {"code": "listed", "detail": f"{value} is on a blocklist", "weight": risk}
    return ev.ToolCallCompleted(
        call_id=f"remote_tool:{tool}:domain:{value}",
        tool=tool,
        step="remote_tool",
        output={"risk": risk, "signals": [signal]},
    )


def started_for(completed: ev.ToolCallCompleted, value: str) -> ev.ToolCallStarted:
    return ev.ToolCallStarted(
        call_id=completed.call_id,
        tool=completed.tool,
        step="remote_tool",
        input={"kind": "domain", "value": value},
    )


def test_a_remote_risk_is_a_cited_reason_bounded_below_a_strong_finding() -> None:
    text = "see you at paypa1-login.top tomorrow"
    hit = remote_answer(0.99)
    steps = [
        ev.TaskSubmitted(content=text, kind="sms"),
        ev.EntitiesExtracted(entities=extract_entities(text, "sms")),
        started_for(hit, "paypa1-login.top"),
        hit,
    ]
    verdict = reason(recorded_stream(*steps))
    (remote,) = [r for r in verdict.reasons if r.code == "remote_urlscan_risk"]
    assert remote.evidence == (4,), "it cites the remote call's completion"
    assert "urlscan finds paypa1-login.top risky (risk 0.99)" in remote.text
    assert REMOTE_MAX_WEIGHT < STRONG_WEIGHT
    assert verdict.verdict == "suspicious", "a remote tool alone never makes a scam"

    audit = build_audit(recorded_stream(*steps, verdict))
    (cited,) = [r for r in audit["reasons"] if r["code"] == "remote_urlscan_risk"]
    assert cited["evidence"][0]["step"] == "remote_tool"
    assert cited["evidence"][0]["data"]["output"]["risk"] == 0.99


def test_two_remote_tools_that_agree_are_two_sources() -> None:
    text = "see you at paypa1-login.top tomorrow"
    one, other = remote_answer(0.9), remote_answer(0.9, tool="phishtank")
    stream = recorded_stream(
        ev.TaskSubmitted(content=text, kind="sms"),
        ev.EntitiesExtracted(entities=extract_entities(text, "sms")),
        started_for(one, "paypa1-login.top"),
        one,
        started_for(other, "paypa1-login.top"),
        other,
    )
    verdict = reason(stream)
    codes = {r.code for r in verdict.reasons}
    assert {"remote_urlscan_risk", "remote_phishtank_risk"} <= codes
    assert verdict.verdict == "scam"


def test_no_remote_risk_is_no_reason() -> None:
    text = "see you at paypa1-login.top tomorrow"
    quiet = remote_answer(0.0)
    stream = recorded_stream(
        ev.TaskSubmitted(content=text, kind="sms"),
        ev.EntitiesExtracted(entities=extract_entities(text, "sms")),
        started_for(quiet, "paypa1-login.top"),
        quiet,
    )
    assert not [r for r in reason(stream).reasons if r.code.startswith("remote_")]


# --- the worker's loop -------------------------------------------------------------------------


class Remote:
    """A remote tool that fails its first `fails` calls with `error`, then answers."""

    def __init__(self, name: str, error: Exception | None = None, fails: int = 0) -> None:
        self.name, self.error, self.fails = name, error, fails
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(call_input)
        if self.error is not None and len(self.calls) <= self.fails:
            raise self.error
        return {"risk": 0.4, "signals": [{"code": "seen", "detail": "seen", "weight": 0.4}]}


class Quiet:
    def __init__(self, name: str, output: dict[str, Any]) -> None:
        self.name, self.output = name, output

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        return self.output


BUILT_IN: dict[str, dict[str, Any]] = {
    "scam_database": {"matches": []},
    "web_search": {"provider": "local", "results": []},
    "domain_reputation": {"domain": "paypa1-login.top", "risk": 0.0, "signals": []},
    "phone_validator": {"number": "+19005550199", "valid": True, "risk": 0.0, "signals": []},
}


async def analysed(remote: Remote) -> list[ev.DomainEvent]:
    log = InMemoryTaskLog(InMemoryEventStore())
    task_id = f"task-{uuid.uuid4()}"
    submitted = NewEvent(
        ev.TaskSubmitted(content=CONTENT, kind="sms"), EventMetadata(tenant="acme", actor="u")
    )
    await log.append(task_id, [submitted], 0)
    tools: dict[str, Any] = {name: Quiet(name, out) for name, out in BUILT_IN.items()}
    tools["urlscan"] = remote
    settings = load_settings(
        mcp_tools=[{**ENTRY, "entities": ["domain"]}],
        tool_timeout_s=0.5,
        tool_retry_backoff_s=0.0,
    )
    assert await run_analysis(Agent(log, tools, settings), task_id) == "completed"
    return [r.event for r in await log.store.read_stream(task_id)]


def remote_events(events: list[ev.DomainEvent]) -> list[tuple[str, int, bool]]:
    found = []
    calls = ev.ToolCallStarted | ev.ToolCallFailed | ev.ToolCallCompleted
    for event in events:
        if isinstance(event, calls) and event.step == "remote_tool":
            retry = event.will_retry if isinstance(event, ev.ToolCallFailed) else False
            found.append((event.type_name, event.attempt, retry))
    return found


async def test_a_remote_call_that_fails_is_retried_and_recorded_attempt_by_attempt() -> None:
    remote = Remote("urlscan", ToolError("urlscan: the tool reported an error"), fails=1)
    events = await analysed(remote)
    assert remote_events(events) == [
        ("ToolCallStarted", 1, False),
        ("ToolCallFailed", 1, True),
        ("ToolCallStarted", 2, False),
        ("ToolCallCompleted", 2, False),
    ]
    assert remote.calls == [{"kind": "domain", "value": "paypa1-login.top"}] * 2
    (verdict,) = [e for e in events if isinstance(e, ev.VerdictReached)]
    assert "remote_urlscan_risk" in {r.code for r in verdict.reasons}


async def test_an_unusable_remote_answer_fails_that_call_once_and_for_all() -> None:
    remote = Remote("urlscan", UnusableAnswer("risk: Input should be a valid number"), fails=9)
    events = await analysed(remote)
    assert remote_events(events) == [("ToolCallStarted", 1, False), ("ToolCallFailed", 1, False)]
    (failure,) = [e for e in events if isinstance(e, ev.ToolCallFailed)]
    assert failure.error.startswith("the tool's answer cannot be used: risk:")
    (verdict,) = [e for e in events if isinstance(e, ev.VerdictReached)]
    assert "tool_failed" in {r.code for r in verdict.reasons}, "it lowers the confidence"


def test_the_remote_entry_is_a_remote_tool_for_planning() -> None:
    config = McpToolConfig.model_validate(ENTRY)
    assert isinstance(config, RemoteTool)
    plan = plan_tool_calls(ENTITIES, kind="sms", client_metadata={}, remote_tools=[config])
    assert {c.tool for c in plan if c.step == "remote_tool"} == {"urlscan"}
