from __future__ import annotations

import pytest

from domain.tools import ToolError
from infrastructure.tools.phone_validator import PhoneValidator, validate_phone

pytestmark = pytest.mark.unit


def test_a_premium_rate_number_is_high_risk() -> None:
    result = validate_phone("+19005550199", None)
    assert result["number_type"] == "premium_rate"
    assert result["valid"] is True
    assert result["region"] == "US"
    assert [s["code"] for s in result["signals"]] == ["premium_rate"]
    assert result["risk"] >= 0.6


def test_a_plain_number_from_the_claimed_region_carries_no_risk() -> None:
    result = validate_phone("+12025550143", "us")
    assert result == {
        "number": "+12025550143",
        "valid": True,
        "number_type": "fixed_line_or_mobile",
        "region": "US",
        "carrier": None,
        "risk": 0.0,
        "signals": [],
    }


def test_a_number_from_elsewhere_than_claimed_is_a_mismatch_and_names_its_carrier() -> None:
    result = validate_phone("+2348031234567", "GB")
    assert (result["region"], result["carrier"], result["number_type"]) == ("NG", "MTN", "mobile")
    assert [s["code"] for s in result["signals"]] == ["claimed_region_mismatch"]


def test_an_unassigned_number_is_invalid() -> None:
    result = validate_phone("+15550123", None)
    assert result["valid"] is False
    assert [s["code"] for s in result["signals"]] == ["invalid_number"]


def test_premium_and_mismatch_combine_below_one() -> None:
    result = validate_phone("+449098790879", "US")
    assert 0.7 < result["risk"] < 1


async def test_the_tool_rejects_what_is_not_a_number() -> None:
    tool = PhoneValidator()
    assert tool.name == "phone_validator"
    assert (await tool({"value": "+19005550199", "claimed_region": None}))["risk"] >= 0.6
    with pytest.raises(ToolError):
        await tool({"value": "call me maybe", "claimed_region": None})
    with pytest.raises(ToolError):
        await tool({"claimed_region": "US"})
