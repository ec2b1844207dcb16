from __future__ import annotations

import pytest

from domain.events import Entity
from domain.extraction import extract_entities
from domain.planning import MAX_CALLS, plan_tool_calls

pytestmark = pytest.mark.unit

MESSAGE = (
    "USPS: pay the $1.99 fee at usps-redelivery.top/pay or call +1 202 555 0143, "
    "questions to help@usps-care.com"
)


def test_each_indicator_gets_the_tools_that_fit_it_in_step_order() -> None:
    entities = extract_entities(MESSAGE, "sms")
    calls = plan_tool_calls(entities, kind="sms", client_metadata={"sender_region": "gb"})
    ids = [c.call_id for c in calls]
    assert ids[:5] == [
        "scam_db:phone:+12025550143",
        "scam_db:domain:usps-care.com",
        "scam_db:domain:usps-redelivery.top",
        "scam_db:email:help@usps-care.com",
        "scam_db:url:http://usps-redelivery.top/pay",
    ]
    assert ids[5].startswith("exa_search:")
    assert ids[6:] == [
        "domain_reputation:usps-care.com",
        "domain_reputation:usps-redelivery.top",
        "phone_validator:+12025550143",
    ]
    by_id = {c.call_id: c for c in calls}
    assert by_id["domain_reputation:usps-redelivery.top"].input == {
        "domain": "usps-redelivery.top",
        "url": "http://usps-redelivery.top/pay",
    }
    assert by_id["domain_reputation:usps-care.com"].input["url"] is None
    assert by_id["phone_validator:+12025550143"].input == {
        "value": "+12025550143",
        "claimed_region": "GB",
    }
    assert [c.step for c in calls][5:7] == ["exa_search", "domain_reputation"]


def test_the_search_query_names_the_sender_and_the_brand_it_claims() -> None:
    calls = plan_tool_calls(extract_entities(MESSAGE, "sms"), kind="sms", client_metadata={})
    (search,) = [c for c in calls if c.tool == "web_search"]
    assert search.input["query"] == "+12025550143 usps-care.com usps-redelivery.top USPS scam"


def test_planning_the_same_task_twice_gives_the_same_ids() -> None:
    first = plan_tool_calls(extract_entities(MESSAGE, "sms"), kind="sms", client_metadata={})
    again = plan_tool_calls(extract_entities(MESSAGE, "sms"), kind="sms", client_metadata={})
    assert first == again


def test_a_message_without_indicators_plans_nothing() -> None:
    entities = extract_entities("Running late, grab a table. Urgent!", "sms")
    assert plan_tool_calls(entities, kind="sms", client_metadata={}) == []


def test_a_flood_of_links_is_capped_and_every_tool_still_runs() -> None:
    entities = tuple(Entity(kind="domain", value=f"d{i}.example.com") for i in range(40)) + tuple(
        Entity(kind="phone", value=f"+1202555{i:04d}") for i in range(40)
    )
    calls = plan_tool_calls(entities, kind="sms", client_metadata={})
    assert len(calls) <= MAX_CALLS
    assert {c.tool for c in calls} == {
        "scam_database",
        "web_search",
        "domain_reputation",
        "phone_validator",
    }
    assert len({c.call_id for c in calls}) == len(calls)
