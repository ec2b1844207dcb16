from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain import events as ev
from domain.errors import UnknownEventType
from domain.log import LogCursor

pytestmark = pytest.mark.unit


def test_every_event_in_the_catalogue_is_registered_under_its_class_name() -> None:
    expected = {
        "TaskSubmitted", "AnalysisStarted", "EntitiesExtracted", "ToolCallStarted",
        "ToolCallCompleted",
        "ToolCallFailed", "ProgressReported", "VerdictReached", "TaskCompleted", "TaskFailed",
        "TaskCancelled", "VerdictReviewed",
        "IndicatorAsserted", "IndicatorRetracted", "IndicatorsImported", "IndicatorsLoaded",
    }  # fmt: skip
    assert set(ev.EVENT_TYPES) == expected
    assert all(cls.type_name == name for name, cls in ev.EVENT_TYPES.items())


def test_events_round_trip_through_their_stored_form() -> None:
    verdict = ev.VerdictReached(
        verdict="scam",
        score=0.93,
        confidence=0.8,
        reasons=(
            ev.Reason(code="known_scam_phone", text="reported 41 times", weight=0.6, evidence=(4,)),
        ),
    )
    assert ev.decode_event("VerdictReached", verdict.model_dump(mode="json")) == verdict


def test_events_are_frozen_and_reject_unknown_fields() -> None:
    event = ev.TaskCancelled(reason="user asked")
    with pytest.raises(ValidationError):
        event.reason = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ev.decode_event("TaskCancelled", {"reason": "x", "surprise": 1})


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValidationError):
        ev.ProgressReported(message="x", percent=101)
    with pytest.raises(ValidationError):
        ev.TaskSubmitted(content="x", kind="fax")


def test_unknown_type_names_the_type() -> None:
    with pytest.raises(UnknownEventType, match="'ParcelTeleported'"):
        ev.decode_event("ParcelTeleported", {})


@pytest.mark.parametrize("text", ["", "12", "a-b", "1-2-3", "-1-2"])
def test_malformed_log_cursors_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="malformed log cursor"):
        LogCursor.parse(text)


def test_log_cursors_order_by_transaction_then_position() -> None:
    assert LogCursor(5, 100) < LogCursor(6, 2) < LogCursor(6, 3)
    assert LogCursor.parse("6-3") == LogCursor(6, 3)
