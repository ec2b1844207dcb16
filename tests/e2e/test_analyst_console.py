"""The analyst's console in headless Chromium, at a laptop's width (1366 px) and a phone's
(390 px): submit and watch live, the triage queue, review with the keyboard, evidence written for
people, the dashboard. Every page is saved as a screenshot (tests/e2e/artifacts/analyst_*.png)
and, at every width, may not scroll sideways.

The stack (api, relay, a worker with slowed tools) is test_console's fixture: one per module."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import events as ev
from domain.log import EventMetadata, NewEvent
from infrastructure.event_store import EventStore
from infrastructure.task_log import TaskLog
from tests.e2e.test_console import (
    PARCEL,
    TENANT,
    Console,
    api_get,
    browser_page,
    console,
    screenshot,
    sign_in,
)

__all__ = ["console"]  # the fixture, imported so that pytest finds it here

pytestmark = pytest.mark.e2e

WIDTHS = [1366, 390]
HEIGHT = {1366: 900, 390: 844}
STAGES = ["entity_extraction", "scam_db", "exa_search", "domain_reputation", "phone_validator",
          "reasoning", "completed"]  # fmt: skip


async def at_width(page: Page, width: int) -> None:
    await page.set_viewport_size({"width": width, "height": HEIGHT[width]})


async def no_sideways_scroll(page: Page, name: str) -> None:
    """Saved as a screenshot; and nothing wider than the window (the header, tables, charts)."""
    await screenshot(page, f"analyst_{name}.png")
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )  # fmt: skip
    assert widths[0] <= widths[1], f"{name}: the page is {widths[0]} px wide in {widths[1]} px"


def analysed(domain: str, verdict: ev.Verdict, score: float) -> list[ev.DomainEvent]:
    """A finished analysis of a link to `domain`, as the worker records it: the scam database
    knows the domain, a web page names it, and it imitates PayPal."""
    match = {
        "kind": "domain", "value": domain, "category": "phishing", "report_count": 3,
        "first_seen": "2026-10-01T00:00:00Z", "last_seen": "2026-11-20T00:00:00Z",
        "source": "seed", "scope": "global",
        "asserted": {"stream_id": "indicators:global", "seq": 4, "tenant": "global",
                     "actor": "seed", "at": "2026-10-01T00:00:00Z"},
    }  # fmt: skip
    page = {
        "title": f"{domain} is a PayPal phishing site",
        "url": f"https://reports.example/{domain}",
        "snippet": f"Users report that {domain} asks for PayPal passwords.",
        "score": 0.9,
        "published": None,
    }
    lookalike = {
        "code": "lookalike_brand",
        "detail": f"{domain} imitates PayPal (paypal) with a slightly different spelling",
        "weight": 0.5,
    }
    calls = [
        ("db", "scam_database", "scam_db", {"kind": "domain", "value": domain},
         {"matches": [match]}),
        ("web", "web_search", "exa_search", {"query": f"{domain} scam",
         "entities": [{"kind": "domain", "value": domain}]},
         {"provider": "local", "results": [page]}),
        ("dom", "domain_reputation", "domain_reputation", {"domain": domain, "url": None},
         {"domain": domain, "registered_domain": domain, "risk": 0.72, "signals": [lookalike]}),
        # a connected MCP tool (SCAMTRAIL_MCP_TOOLS), after the built-in ones
        (f"remote_tool:urlscan:domain:{domain}", "urlscan", "remote_tool",
         {"kind": "domain", "value": domain},
         {"risk": 0.8, "signals": [{"code": "new_domain", "detail": "registered 3 days ago",
                                    "weight": 0.4}]}),
    ]  # fmt: skip
    events: list[ev.DomainEvent] = [
        ev.EntitiesExtracted(
            entities=(
                ev.Entity(kind="domain", value=domain),
                ev.Entity(kind="signal", value="impersonated_brand", details={"brand": "PayPal"}),
            )
        )
    ]
    for call_id, tool, step, call_input, output in calls:
        events.append(ev.ToolCallStarted(call_id=call_id, tool=tool, step=step, input=call_input))
        events.append(
            ev.ToolCallCompleted(
                call_id=call_id, tool=tool, step=step, output=output, duration_ms=42.0
            )
        )
    reasons = (
        ev.Reason(code="scam_database_match", text=f"{domain} is reported 3 times",
                  weight=0.8, evidence=(4,)),
        ev.Reason(code="web_reports", text="1 local report names it", weight=0.3, evidence=(6,)),
        ev.Reason(code="domain_risk", text=f"{domain} looks risky", weight=0.72, evidence=(8,)),
    )  # fmt: skip
    return [
        *events,
        ev.VerdictReached(verdict=verdict, score=score, confidence=0.8, reasons=reasons),
        ev.TaskCompleted(verdict=verdict),
    ]


async def finished_task(engine: AsyncEngine, verdict: ev.Verdict, score: float) -> str:
    """A task of the console's tenant, analysed as `analysed` says; its id."""
    task_id = f"{verdict}-{uuid.uuid4()}"
    domain = f"paypa1-{uuid.uuid4().hex[:6]}.top"
    meta = EventMetadata(tenant=TENANT, actor="console-e2e")
    submitted = ev.TaskSubmitted(content=f"Your PayPal is locked, log in at https://{domain}",
                                 kind="sms")  # fmt: skip
    stream = [NewEvent(e, meta) for e in (submitted, *analysed(domain, verdict, score))]
    await TaskLog(EventStore(engine)).append(task_id, stream, 0)
    return task_id


@pytest.mark.parametrize("width", WIDTHS)
async def test_submit_and_watch_live_then_the_verdict_leads(console: Console, width: int) -> None:
    async with browser_page(console) as page:
        await at_width(page, width)
        # Typed before signing in: still there after.
        await page.goto(f"{console.url}/")
        await page.fill("#content", PARCEL)
        await page.select_option("#kind", "sms")
        await page.fill("#token", console.token)
        await page.click("#login-button")
        await expect(page.locator("#notice")).to_have_text("Token accepted.")
        await expect(page.locator("#content")).to_have_value(PARCEL)
        await expect(page.locator("#kind")).to_have_value("sms")
        await expect(page.locator("#token")).to_be_hidden()
        await no_sideways_scroll(page, f"submit_{width}")
        await page.click("#submit-button")
        await page.wait_for_url(re.compile(r"#/tasks/[^/?]+$"))
        task_id = page.url.split("#/tasks/")[1]

        # Live: the stepper names each step for people, with the wire's percentages, and says
        # which tool is at work.
        stepper = page.locator("#stepper li.stage")
        await expect(stepper).to_have_count(len(STAGES))
        assert await stepper.evaluate_all("items => items.map(i => i.dataset.stage)") == STAGES
        await expect(page.locator("#stepper [data-stage=scam_db]")).to_contain_text(
            "Checking scam database"
        )
        await expect(page.locator("#stepper [data-stage=scam_db]")).to_contain_text("30 %")
        # Which tool is at work depends on when the page looks: by the time scam_db shows its
        # 30 %, the next tool may have started. Some tool, named for people, is shown.
        await expect(page.locator("#current-tool")).to_contain_text(
            re.compile("Scam database|Web search|Domain reputation|Phone validator")
        )
        await no_sideways_scroll(page, f"live_{width}")

        # Done: progress folds away, and the verdict with its reasons is in view.
        await expect(page.locator("#progress-label")).to_have_text("100 %")
        await expect(page.locator("#stepper [data-stage=completed]")).to_have_attribute(
            "data-state", "done"
        )
        await expect(page.locator("#stepper [data-stage=scam_db]")).to_have_attribute(
            "data-state", "done"
        )
        await expect(page.locator("#stepper [data-stage=phone_validator]")).to_have_attribute(
            "data-state", "skipped"
        )
        assert await page.locator("#live").evaluate("panel => panel.open") is False
        await expect(page.locator("#final-verdict")).to_have_text("scam")
        await expect(page.locator("#final-verdict")).to_be_in_viewport()
        await expect(page.locator("#reasons li.reason").first).to_be_in_viewport()
        names = await page.locator("#steps .step-name").all_text_contents()
        assert "Checking scam database" in names and "scam_db" not in names
        await no_sideways_scroll(page, f"task_{width}")
        audit = await api_get(console, f"/tasks/{task_id}/audit")
        assert audit["verdict"]["agent"] == "scam"


@pytest.mark.parametrize("width", WIDTHS)
async def test_triage_queue_and_review_with_the_keyboard(
    console: Console, engine: AsyncEngine, width: int
) -> None:
    safe = await finished_task(engine, "safe", 0.05)
    scams = [await finished_task(engine, "scam", 0.9) for _ in range(2)]
    suspicious = [await finished_task(engine, "suspicious", s) for s in (0.5, 0.55)]
    async with browser_page(console) as page:
        await at_width(page, width)
        await sign_in(page, console)
        await page.goto(f"{console.url}/#/queue")
        rows = page.locator("#queue-sections tr.task")
        await expect(page.locator("#queue-rest tr.task").first).to_be_visible()
        order = await rows.evaluate_all("rows => rows.map(r => r.dataset.taskId)")
        # Unreviewed suspicious first (newest first), then unreviewed scams, then the rest.
        assert order.index(suspicious[1]) < order.index(suspicious[0]) < order.index(scams[1])
        assert order.index(scams[1]) < order.index(scams[0]) < order.index(safe)
        assert await page.locator("#queue-suspicious tr.task").count() >= 2
        first = page.locator(f"tr.task[data-task-id='{suspicious[1]}']")
        await expect(first.locator("code.task-id")).to_have_text(suspicious[1])  # never cut
        await expect(first.locator(".preview")).to_contain_text("Your PayPal is locked")
        await expect(first.locator("td.score")).to_have_text("0.55")
        await expect(first.locator("td.time")).to_contain_text("ago")
        await no_sideways_scroll(page, f"queue_{width}")

        # The filtered list shows the same rows.
        await page.click("#nav-tasks")
        listed = page.locator(f"#task-rows tr.task[data-task-id='{suspicious[1]}']")
        await expect(listed.locator(".preview")).to_contain_text("Your PayPal is locked")
        await no_sideways_scroll(page, f"list_{width}")
        await page.click("#nav-queue")
        await expect(page.locator("#queue-rest tr.task").first).to_be_visible()

        # `?` shows the keys.
        await page.keyboard.press("?")
        await expect(page.locator("#keys-help")).to_be_visible()
        await expect(page.locator("#keys-page")).to_contain_text("select the next task")
        await screenshot(page, f"analyst_keys_{width}.png")
        await page.keyboard.press("Escape")
        await expect(page.locator("#keys-help")).to_be_hidden()

        # Enter opens the selected (first) task; `c` confirms it and the next one opens.
        head, second, third = order[0], order[1], order[2]
        await page.keyboard.press("Enter")
        await expect(page.locator("#task-id")).to_have_text(head)
        await expect(page.locator("#final-verdict")).to_have_text("suspicious")
        await no_sideways_scroll(page, f"review_{width}")
        # A note typed into the review form goes with the keyboard's review; Escape leaves it.
        await page.fill("#review-note", "Same lure as last week's PayPal wave")
        await page.keyboard.press("c")  # typed into the field: not a command
        await page.keyboard.press("Escape")
        await page.keyboard.press("c")
        await expect(page.locator("#task-id")).to_have_text(second)
        await expect(page.locator("#notice")).to_contain_text("Review recorded: confirmed")
        await expect(page.locator("#final-verdict")).not_to_have_text("no verdict yet")
        reviewed = (await api_get(console, f"/tasks/{head}/audit"))["reviews"]
        assert [(r["decision"], r["verdict"], r["note"]) for r in reviewed] == [
            ("confirm", "suspicious", "Same lure as last week's PayPal wavec")
        ]

        # `o` then 3 overrides as safe; the one after opens.
        await page.keyboard.press("o")
        await expect(page.locator("#override-picker")).to_be_visible()
        await page.keyboard.press("3")
        await expect(page.locator("#task-id")).to_have_text(third)
        task = await api_get(console, f"/tasks/{second}")
        assert (task["reviewed_verdict"], task["final_verdict"]) == ("safe", "safe")

        # `k` goes back; the queue no longer lists what was reviewed.
        await page.keyboard.press("k")
        await expect(page.locator("#task-id")).to_have_text(second)
        await expect(page.locator("#reviewed")).to_have_text("yes")
        await page.keyboard.press("q")
        await expect(page.locator("#queue-rest tr.task").first).to_be_visible()
        unreviewed = page.locator("#queue-suspicious tr.task, #queue-scam tr.task")
        listed = await unreviewed.evaluate_all("rows => rows.map(r => r.dataset.taskId)")
        assert head not in listed and second not in listed


@pytest.mark.parametrize("width", WIDTHS)
async def test_evidence_is_written_for_people(
    console: Console, engine: AsyncEngine, width: int
) -> None:
    task_id = await finished_task(engine, "suspicious", 0.6)
    async with browser_page(console) as page:
        await at_width(page, width)
        await sign_in(page, console)
        await page.goto(f"{console.url}/#/tasks/{task_id}")
        database = page.locator(".evidence-card[data-tool=scam_database]")
        await expect(database).to_contain_text("known to the scam database")
        await expect(database).to_contain_text("reported 3 times as “phishing”")
        await expect(database).to_contain_text("global indicator from seed")
        web = page.locator(".evidence-card[data-tool=web_search]")
        await expect(web.locator(".page strong")).to_contain_text("is a PayPal phishing site")
        await expect(web.locator(".page .url")).to_contain_text("https://reports.example/")
        assert await web.locator("a[href^='https://reports']").count() == 0  # text, not links
        lookalike = page.locator(".evidence-card[data-tool=domain_reputation] .lookalike")
        await expect(lookalike).to_contain_text("look-alike")
        await expect(lookalike).to_contain_text("imitates PayPal")
        await expect(page.locator("#entities")).to_contain_text("impersonated brand (PayPal)")
        remote = page.locator(".evidence-card[data-tool=urlscan]")
        await expect(remote).to_contain_text(re.compile(r"urlscan on paypa1-\w+\.top: risk 0\.80"))
        await expect(remote.locator(".signal")).to_contain_text("registered 3 days ago")

        # The raw event is one click away.
        raw = database.locator("details.raw")
        await raw.locator("summary").click()
        await expect(raw.locator("pre")).to_be_visible()
        await expect(raw.locator("pre")).to_contain_text('"report_count": 3')
        await no_sideways_scroll(page, f"evidence_{width}")

        # A reason's evidence link leads to its event in the timeline.
        await page.locator("#reasons a.evidence[data-seq='8']").click()
        await expect(page.locator("#ev-8")).to_have_class(re.compile(r"\bhighlight\b"))
        await expect(page.locator("#ev-8")).to_be_in_viewport()
        await expect(page.locator("#ev-8")).to_contain_text("Checking domain reputation")


@pytest.mark.parametrize("width", WIDTHS)
async def test_the_dashboard_draws_the_tenants_figures(
    console: Console, engine: AsyncEngine, width: int
) -> None:
    await finished_task(engine, "scam", 0.9)
    board: dict[str, Any] = await api_get(console, "/dashboard?days=7")
    async with browser_page(console) as page:
        await at_width(page, width)
        await sign_in(page, console)
        await page.click("#nav-dashboard")
        tiles = page.locator("#dash-tiles")
        await expect(tiles.locator("[data-tile=tasks] strong")).to_have_text(str(board["tasks"]))
        await expect(tiles.locator("[data-tile=scam] strong")).to_have_text(
            str(board["outcomes"]["scam"])
        )
        await expect(page.locator("#chart-verdicts svg rect.segment").first).to_be_visible()
        days_drawn = await page.locator("#chart-verdicts svg text.axis").count()
        assert days_drawn > 3  # the value ticks and at least one day
        await expect(page.locator("#chart-indicators svg text.label").first).to_contain_text(
            "paypa1-"
        )
        await expect(page.locator("#chart-brands svg")).to_contain_text("PayPal")
        await expect(page.locator("#chart-tools svg")).to_contain_text("Scam database")
        await expect(page.locator("#tool-rows tr.tool[data-tool=scam_database]")).to_be_visible()
        await no_sideways_scroll(page, f"dashboard_{width}")

        await page.select_option("#dash-days", "30")
        await page.wait_for_url(re.compile(r"#/dashboard\?days=30$"))
        month = await api_get(console, "/dashboard?days=30")
        await expect(tiles.locator("[data-tile=tasks] strong")).to_have_text(str(month["tasks"]))


async def test_a_refused_token_is_forgotten_and_the_draft_kept(console: Console) -> None:
    async with browser_page(console) as page:
        await page.goto(f"{console.url}/")
        await page.fill("#content", "Typed before signing in")
        await page.fill("#token", "not-a-valid-token")
        await page.click("#login-button")
        await expect(page.locator("#notice")).to_contain_text("Not signed in (401)")
        assert await page.evaluate("sessionStorage.getItem('scamtrail.token')") is None
        await expect(page.locator("#who")).to_have_text("not signed in")
        await expect(page.locator("#token")).to_be_visible()
        await page.reload()
        await expect(page.locator("#content")).to_have_value("Typed before signing in")
