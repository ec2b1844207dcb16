"""A run of an analysis must have room for a tool call and the reasoning: settings that leave
none are refused at load, naming the settings to change."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infrastructure.settings import load_settings

pytestmark = pytest.mark.unit


def test_a_run_stops_itself_a_little_before_arqs_job_timeout() -> None:
    assert load_settings(analysis_timeout_s=120).analysis_run_s == 115
    assert load_settings(analysis_timeout_s=10, tool_timeout_s=2).analysis_run_s == 9


def test_a_job_timeout_without_room_for_one_tool_call_is_refused() -> None:
    with pytest.raises(ValidationError, match="analysis_timeout_s") as refused:
        load_settings(analysis_timeout_s=8, tool_timeout_s=8)
    assert "tool_timeout_s (8 s)" in str(refused.value)
    assert "SCAMTRAIL_TOOL_TIMEOUT_S" in str(refused.value)


def test_the_llm_timeout_counts_only_with_an_llm_configured() -> None:
    assert load_settings(analysis_timeout_s=25, tool_timeout_s=8, llm_timeout_s=20)
    with pytest.raises(ValidationError, match=r"llm_timeout_s \(20 s\)"):
        load_settings(
            analysis_timeout_s=25, tool_timeout_s=8, llm_timeout_s=20, llm_base_url="http://llm"
        )
