"""A web search result is evidence only when it names what was searched (domain.search_relevance),
and the reason says which provider answered (domain.evidence, domain.progress)."""

from __future__ import annotations

from typing import Any

import pytest

from domain import events as ev
from domain.evidence import collect, tool_reasons
from domain.extraction import extract_entities
from domain.planning import plan_tool_calls
from domain.progress import progress_message
from domain.search_relevance import (
    Searched,
    names,
    naming_results,
    searched_entities,
    written_forms,
)
from tests.factories import recorded_stream

pytestmark = pytest.mark.unit

PHONE = Searched("phone", "+12025550143")
DOMAIN = Searched("domain", "usps-redelivery.top")
EMAIL = Searched("email", "care@usps-redelivery.top")
REPORT = "https://reports.scamtrail.example/2025/06/parcel_delivery-0001"


@pytest.mark.parametrize(
    "text",
    [
        "Callers from +12025550143 pose as the fraud desk.",
        "Callers from +1 202 555 0143 pose as the fraud desk.",
        "Callers from (202) 555-0143 pose as the fraud desk.",
        "Callers from 202-555-0143.",
        "Callers from 2025550143.",
        "Callers from 1-202-555-0143.",
    ],
)
def test_a_number_is_named_in_any_usual_format(text: str) -> None:
    assert names(text, PHONE)


@pytest.mark.parametrize(
    "text",
    [
        "Callers from +1 202 555 0144 pose as the fraud desk.",
        "Tracking number 12025550143999.",
        "A FedEx scam: texts about a parcel.",
    ],
)
def test_another_number_or_none_is_not_the_number(text: str) -> None:
    assert not names(text, PHONE)


def test_a_number_abroad_is_named_in_its_national_format() -> None:
    assert names("Texts from 07911 123456 claim a parcel fee.", Searched("phone", "+447911123456"))


@pytest.mark.parametrize(
    "text",
    [
        "Links to usps-redelivery.top ask for a fee.",
        "Links to https://pay.usps-redelivery.top/fee ask for a fee.",
        "Links to USPS-Redelivery.TOP.",
        "Replies go to care@usps-redelivery.top.",
    ],
)
def test_a_domain_is_named_by_itself_or_a_subdomain(text: str) -> None:
    assert names(text, DOMAIN)


def test_a_subdomain_is_named_by_its_registered_domain() -> None:
    track = Searched("domain", "track.usps-redelivery.top")
    assert names("Links to usps-redelivery.top ask for a fee.", track)


@pytest.mark.parametrize(
    "text",
    [
        "Links to usps-redelivery.top.evil.example ask for a fee.",
        "Links to myusps-redelivery.top ask for a fee.",
        "Fake USPS redelivery texts: a scam.",
        "Links to redelivery.top ask for a fee.",
    ],
)
def test_a_look_alike_or_a_word_is_not_the_domain(text: str) -> None:
    assert not names(text, DOMAIN)


def test_an_address_is_named_in_any_case_and_only_whole() -> None:
    assert names("Write to CARE@usps-redelivery.top for a refund.", EMAIL)
    assert not names("Write to customercare@usps-redelivery.top for a refund.", EMAIL)


def test_only_the_results_naming_a_searched_entity_count() -> None:
    results = [
        {"title": "Prize notification scam", "url": REPORT, "snippet": "Claim your reward."},
        {"title": "Fake USPS texts", "url": REPORT, "snippet": "Links to usps-redelivery.top."},
        {"title": "Fraud desk callers", "url": REPORT, "snippet": "Calls from (202) 555-0143."},
    ]
    found = naming_results(results, [PHONE, DOMAIN], provider="local")
    assert [(r["title"], named) for r, named in found] == [
        ("Fake USPS texts", [DOMAIN]),
        ("Fraud desk callers", [PHONE]),
    ]


def test_a_web_page_must_report_a_scam_and_not_be_the_site_itself() -> None:
    fedex = Searched("domain", "fedex.com")
    results = [
        {"title": "Tracking", "url": "https://www.fedex.com/track/", "snippet": "fedex.com"},
        {"title": "Report fraud", "url": "https://fedex.com/en-us/trust", "snippet": "fedex.com"},
        {"title": "Is fedex.com legit?", "url": "https://blog.example/fedex", "snippet": "Yes."},
        {"title": "Scam alert", "url": "https://news.example/x", "snippet": "fake fedex.com"},
    ]
    found = naming_results(results, [fedex], provider="exa")
    assert [r["url"] for r, _ in found] == ["https://news.example/x"]


def test_the_entities_of_a_call_input_are_read_safely() -> None:
    raw: Any = [
        {"kind": "domain", "value": "WWW.USPS-Redelivery.top"},
        {"kind": "phone", "value": "+12025550143"},
        {"kind": "url", "value": "https://x.example"},
        {"kind": "email"},
        "usps-redelivery.top",
    ]
    assert searched_entities(raw) == [DOMAIN, PHONE]
    assert searched_entities(None) == []
    assert searched_entities("usps-redelivery.top") == []


def test_the_forms_a_report_may_write() -> None:
    assert written_forms(PHONE) == (["+12025550143", "12025550143", "2025550143"], [])
    assert written_forms(Searched("phone", "+447911123456"))[0] == [
        "+447911123456",
        "447911123456",
        "7911123456",
        "07911123456",
    ]
    assert written_forms(Searched("domain", "pay.usps-redelivery.top")) == (
        ["pay.usps-redelivery.top", "usps-redelivery.top"],
        ["pay.usps-redelivery.top"],
    )


MESSAGE = (
    "USPS: your parcel is held. Pay the fee at https://usps-redelivery.top/pay"
    " or call +1 202 555 0143"
)


def searched_stream(output: dict[str, Any], *, entities: bool = True) -> list[Any]:
    """A task that searched the web for MESSAGE's sender and got `output`."""
    found = extract_entities(MESSAGE, "sms")
    (call,) = [
        c for c in plan_tool_calls(found, kind="sms", client_metadata={}) if c.tool == "web_search"
    ]
    call_input = call.input if entities else {"query": call.input["query"]}
    return recorded_stream(
        ev.TaskSubmitted(content=MESSAGE, kind="sms"),
        ev.EntitiesExtracted(entities=found),
        ev.ToolCallStarted(call_id=call.call_id, tool=call.tool, step=call.step, input=call_input),
        ev.ToolCallCompleted(call_id=call.call_id, tool=call.tool, step=call.step, output=output),
        seconds_apart=0,
    )


def web_reasons(stream: list[Any]) -> list[ev.Reason]:
    return [r for r in tool_reasons(collect(stream)) if r.code == "web_reports"]


def report(title: str, snippet: str) -> dict[str, Any]:
    return {"title": title, "url": REPORT, "snippet": snippet, "score": 0.1, "published": None}


def test_the_planned_search_lists_the_entities_it_searches() -> None:
    found = extract_entities(MESSAGE, "sms")
    (call,) = [
        c for c in plan_tool_calls(found, kind="sms", client_metadata={}) if c.tool == "web_search"
    ]
    assert call.input == {
        "query": "+12025550143 usps-redelivery.top USPS scam",
        "entities": [
            {"kind": "phone", "value": "+12025550143"},
            {"kind": "domain", "value": "usps-redelivery.top"},
        ],
    }


def test_reports_sharing_only_the_query_words_are_no_evidence() -> None:
    output = {
        "provider": "local",
        "results": [report("USPS redelivery scam", "Fake USPS texts ask for a fee.")] * 3,
    }
    assert web_reasons(searched_stream(output)) == []


def test_one_local_report_naming_the_domain_is_evidence_and_says_so() -> None:
    output = {
        "provider": "local",
        "results": [
            report("Fake USPS texts", "Links to usps-redelivery.top ask for a fee."),
            report("Prize notification scam", "Claim your reward."),
        ],
    }
    (reason,) = web_reasons(searched_stream(output))
    assert reason.text == (
        f"1 local report names usps-redelivery.top as a scam, e.g. 'Fake USPS texts' ({REPORT})"
    )
    assert reason.weight == 0.3


def test_more_reports_weigh_more_and_name_every_entity_they_name() -> None:
    output = {
        "provider": "exa",
        "results": [
            report("Scam: usps-redelivery.top", "Fake USPS texts."),
            report("Fraud warning", "Callers from (202) 555-0143."),
            report("Smishing", "usps-redelivery.top again."),
        ],
    }
    (reason,) = web_reasons(searched_stream(output))
    assert reason.text.startswith(
        "3 Exa results name usps-redelivery.top and +12025550143 as a scam, e.g. "
        "'Scam: usps-redelivery.top'"
    )
    assert reason.weight == 0.45


def test_a_call_recorded_without_entities_counts_nothing() -> None:
    output = {"provider": "local", "results": [report("Fake", "usps-redelivery.top")]}
    assert web_reasons(searched_stream(output, entities=False)) == []


def test_the_progress_message_says_which_provider_answered() -> None:
    output = {"provider": "local", "results": [report("Fake", "usps-redelivery.top")] * 2}
    completed = searched_stream(output)[-1]
    message = progress_message(completed)
    assert message["step"] == "exa_search"
    assert message["message"].startswith(
        "Searching the web for reports: 2 results from local reports in "
    )
    exa = searched_stream({"provider": "exa", "results": []})[-1]
    assert ": 0 results from Exa in " in progress_message(exa)["message"]
