"""The analyst console in headless Chromium against real processes: `scamtrail api` under
uvicorn, `scamtrail relay` (live progress) and a `scamtrail worker` running the agent."""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, async_playwright, expect

from api.dev_auth import dev_token
from infrastructure.settings import Settings, load_settings
from tests.e2e.progress_stack import free_port, processes, start_api, start_relay
from tests.e2e.worker_process import WorkerProcess, settings_env
from tests.fault_toolbox import slow_tools

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"  # Debian's package; .ci/run installs it
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
ARTIFACTS = Path(__file__).parent / "artifacts"
PARCEL = "URGENT: your parcel is held, pay 1.99 at http://usps-redelivery.top"
WAIT_MS = 20_000  # the longest any single browser wait may take
TENANT = f"console-{uuid.uuid4().hex[:8]}"


def console_token(settings: Settings, roles: tuple[str, ...] = ("submitter", "analyst")) -> str:
    """A token the api started with `settings` accepts: a signed development token."""
    return dev_token(settings, roles, TENANT, "console-e2e")


@dataclass
class Console:
    url: str
    token: str


@pytest.fixture(scope="module")
def console(
    migrated_database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    # Tool calls slowed and one at a time, so the analysis takes a couple of seconds and the
    # steps visibly arrive one by one.
    settings = load_settings(
        database_url=migrated_database,
        redis_url=redis_url,
        queue=f"scamtrail:test:{uuid.uuid4().hex[:12]}",
        database_pool_size=5,
        tool_concurrency=1,
        ws_poll_s=0.1,
        relay_lock_retry_s=0.2,
    )
    env, port, logs = settings_env(settings), free_port(), tmp_path_factory.mktemp("console")
    with processes() as started:
        started.append(start_relay(env, logs / "relay.log"))
        started.append(start_api(env, port, logs / "api.log"))
        worker = WorkerProcess(settings, logs / "worker.log", **slow_tools(latency_s=0.2))
        try:
            yield Console(f"http://127.0.0.1:{port}", console_token(settings))
        finally:
            worker.stop()


# Records when each step appeared in the page and every value the progress bar took, so the
# test can tell steps drawn live from a history replayed after the fact.
RECORD_STEPS = """
window.__steps = []; window.__percents = [];
new MutationObserver((mutations) => {
  for (const m of mutations) {
    for (const node of m.addedNodes) {
      if (node.nodeType === 1 && node.matches('li.step')) {
        window.__steps.push({step: node.dataset.step, at: Date.now()});
      }
    }
    if (m.type === 'attributes' && m.target.id === 'progress') {
      window.__percents.push(Number(m.target.getAttribute('value')));
    }
  }
}).observe(document, {childList: true, subtree: true, attributes: true,
                      attributeFilter: ['value']});
"""


@asynccontextmanager
async def browser_page(console: Console) -> AsyncIterator[Page]:
    if not HAVE_CHROMIUM:
        pytest.fail("Chromium is missing: apt-get install -y --no-install-recommends chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WAIT_MS)
            await page.add_init_script(RECORD_STEPS)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            try:
                yield page
            except BaseException:
                with contextlib.suppress(PlaywrightError):
                    await screenshot(page, "console_failure.png")  # what the browser showed
                print("browser errors:", *errors, sep="\n  ")
                raise
            # A script error or a Content-Security-Policy violation fails the test; refused
            # requests (the 401 test) are expected.
            assert [e for e in errors if not e.startswith("Failed to load resource")] == []
        finally:
            await browser.close()


async def sign_in(page: Page, console: Console) -> None:
    await page.goto(f"{console.url}/")
    await page.fill("#token", console.token)
    await page.click("#login-button")
    await expect(page.locator("#notice")).to_have_text("Token accepted.")


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def epoch_ms(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


async def api_get(console: Console, path: str) -> Any:
    headers = {"Authorization": f"Bearer {console.token}"}
    async with httpx.AsyncClient(base_url=console.url, headers=headers, timeout=5) as http:
        response = await http.get(path)
        response.raise_for_status()
        return response.json()


async def test_submit_watch_live_audit_review_and_filter(console: Console) -> None:
    async with browser_page(console) as page:
        await sign_in(page, console)
        await page.fill("#content", PARCEL)
        await page.select_option("#kind", "sms")
        await page.click("#submit-button")
        await page.wait_for_url(re.compile(r"#/tasks/[^/?]+$"))
        task_id = page.url.split("#/tasks/")[1]

        # Live: the bar reaches 100 % and the steps arrived while the agent was still working.
        await expect(page.locator("#progress-label")).to_have_text("100 %")
        await expect(page.locator("#progress")).to_have_attribute("value", "100")
        drawn: list[dict[str, Any]] = await page.evaluate("window.__steps")
        percents: list[float] = await page.evaluate("window.__percents")
        timeline = (await api_get(console, f"/tasks/{task_id}/timeline?limit=1000"))["events"]
        (done,) = [e for e in timeline if e["event_type"] == "TaskCompleted"]
        steps = [d["step"] for d in drawn]
        assert {"entity_extraction", "scam_db"} <= set(steps) and steps[-1] == "completed"
        for step in ("entity_extraction", "scam_db"):
            first = min(d["at"] for d in drawn if d["step"] == step)
            assert first < epoch_ms(done["recorded_at"]), f"{step} was only drawn after the end"
        assert percents == sorted(percents) and any(0 < p < 100 for p in percents), percents
        await expect(page.locator("#steps li")).to_have_count(len(timeline))

        # The audit: verdict, reasons citing events, and the cited row in the timeline.
        await expect(page.locator("#final-verdict")).to_have_text("scam")
        await expect(page.locator("#agent-verdict")).to_have_text("scam")
        await expect(page.locator("#task-content")).to_have_text(PARCEL)
        await expect(page.locator("#timeline tr")).to_have_count(len(timeline))
        link = page.locator("#reasons a.evidence").last
        seq = await link.get_attribute("data-seq")
        await link.click()
        row = page.locator(f"#ev-{seq}")
        await expect(row).to_have_class(re.compile(r"\bhighlight\b"))
        await expect(row).to_be_in_viewport()
        assert page.url.endswith(f"#/tasks/{task_id}/events/{seq}")
        await screenshot(page, "console_task.png")

        # A review overrides the agent; the page shows it without a reload.
        await page.check("input[name=decision][value=override]")
        await page.select_option("#review-verdict", "suspicious")
        note = "Courier confirmed by phone <b>not</b> a scam & legit"
        await page.fill("#review-note", note)
        await page.click("#review-submit")
        await expect(page.locator("#reviews li.review .note")).to_have_text(note)
        await expect(page.locator("#final-verdict")).to_have_text("suspicious")
        await expect(page.locator("#agent-verdict")).to_have_text("scam")
        await expect(page.locator("#reviewed")).to_have_text("yes")
        await screenshot(page, "console_reviewed.png")

        # The list, filtered by the final verdict: the task moved from scam to suspicious.
        await page.click("#nav-tasks")
        mine = page.locator(f"tr.task[data-task-id='{task_id}']")
        await expect(mine).to_have_count(1)
        await page.select_option("#filters select[name=verdict]", "scam")
        await page.fill("#filters input[name=q]", "parcel")
        await page.click("#apply-filters")
        await page.wait_for_url(re.compile(r"#/tasks\?verdict=scam&q=parcel$"))
        await expect(page.locator("#task-rows td.muted, #task-rows tr.task").first).to_be_visible()
        await expect(mine).to_have_count(0)
        for verdict in await page.locator("#task-rows td.final-verdict").all_text_contents():
            assert verdict == "scam"
        await page.select_option("#filters select[name=verdict]", "suspicious")
        await page.select_option("#filters select[name=reviewed]", "true")
        await page.click("#apply-filters")
        await expect(mine).to_have_count(1)
        await expect(mine.locator("td.final-verdict")).to_have_text("suspicious")
        await screenshot(page, "console_list.png")
        await mine.locator("a").click()
        await expect(page.locator("#task-id")).to_have_text(task_id)
        await expect(page.locator("#final-verdict")).to_have_text("suspicious")


async def test_hostile_content_is_shown_as_text(console: Console) -> None:
    hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    async with browser_page(console) as page:
        await sign_in(page, console)
        await page.fill("#content", hostile)
        await page.click("#submit-button")
        await expect(page.locator("#task-content")).to_have_text(hostile)
        await expect(page.locator("#timeline tr").first).to_be_visible()
        assert await page.evaluate("window.__pwned") is None
        assert await page.locator("main img, main script").count() == 0


async def test_a_refused_token_is_explained(console: Console) -> None:
    async with browser_page(console) as page:
        if console.token == "no-auth-yet":
            # Before auth lands the api accepts anything: play its future 401 answer instead.
            async def refuse(route: Any) -> None:
                await route.fulfill(
                    status=401, json={"detail": "invalid token"}, content_type="application/json"
                )

            await page.route("**/tasks?**", refuse)
        await page.goto(f"{console.url}/#/tasks")
        await page.fill("#token", "not-a-valid-token")
        await page.click("#login-button")
        notice = page.locator("#notice")
        await expect(notice).to_contain_text("Not signed in (401)")
        await expect(notice).to_contain_text("Paste a valid token")


async def test_the_task_list_pages_with_a_cursor(console: Console) -> None:
    headers = {"Authorization": f"Bearer {console.token}"}
    async with httpx.AsyncClient(base_url=console.url, headers=headers, timeout=5) as http:
        older, newer = [
            (await http.post("/tasks", json={"content": f"paging check {n}"})).json()["task_id"]
            for n in (1, 2)
        ]
    async with browser_page(console) as page:
        await sign_in(page, console)
        await page.goto(f"{console.url}/#/tasks?q=paging&limit=1")
        rows = page.locator("#task-rows tr.task")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_have_attribute("data-task-id", newer)
        await page.click("#next-page")
        await page.wait_for_url(re.compile(r"cursor="))
        await expect(rows.first).to_have_attribute("data-task-id", older)
        await expect(rows).to_have_count(1)
        await page.click("#first-page")
        await expect(rows.first).to_have_attribute("data-task-id", newer)


async def test_the_api_docs_work_offline_under_the_page_policy(console: Console) -> None:
    """/docs in a browser that may reach nothing but the api: Swagger UI loads from the api
    itself, renders every route of the schema, and breaks no Content-Security-Policy rule
    (`browser_page` fails the test on any console error)."""
    async with browser_page(console) as page:
        elsewhere: list[str] = []

        async def only_the_api(route: Any) -> None:
            if route.request.url.startswith(console.url):
                await route.continue_()
            else:
                elsewhere.append(route.request.url)
                await route.abort()

        await page.route("**/*", only_the_api)
        await page.goto(f"{console.url}/docs")
        await expect(page.locator(".opblock-summary-path").first).to_be_visible()
        paths = await page.locator(".opblock-summary-path").all_inner_texts()
        schema = await api_get(console, "/openapi.json")
        assert {p.replace("\u200b", "") for p in paths} == set(schema["paths"])
        assert elsewhere == []
