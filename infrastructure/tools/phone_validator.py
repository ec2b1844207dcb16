"""Phone validation, offline, from libphonenumber's metadata: is the number real, what kind of
line is it, whose network, and does it come from where the sender claims.

Risk is the noisy-OR of the signals' weights (1 - product of (1 - weight)), capped below 1.
"""

from __future__ import annotations

from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType, carrier

from domain.tools import ToolError

MAX_RISK = 0.99
# Lowercase names of libphonenumber's line types, as the output contract states them.
NUMBER_TYPES: dict[int, str] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}
# Premium-rate lines bill the caller per minute: the classic callback scam.
TYPE_SIGNALS: dict[str, tuple[str, float]] = {
    "premium_rate": ("is a premium-rate line that charges the caller per minute", 0.7),
    "voip": ("is an internet (VoIP) number, cheap to get and hard to trace", 0.35),
    "shared_cost": ("is a shared-cost line that charges the caller", 0.2),
    "personal_number": ("is a personal forwarding number that hides the real line", 0.2),
}

Signal = dict[str, Any]


def validate_phone(value: str, claimed_region: str | None) -> dict[str, Any]:
    """The contract output of `phone_validator` (domain.tools); ValueError if not a number."""
    claimed = claimed_region.strip().upper() if claimed_region else None
    try:
        number = phonenumbers.parse(value, claimed or "US")
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"not a phone number: {value!r} ({error})") from error
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    valid = phonenumbers.is_valid_number(number)
    number_type = NUMBER_TYPES.get(phonenumbers.number_type(number), "unknown")
    region = phonenumbers.region_code_for_number(number)
    region = region if region and region != "ZZ" else None
    signals: list[Signal] = []
    if not valid:
        signals.append(
            _signal("invalid_number", f"{e164} is not a number any network assigns", 0.3)
        )
    if number_type in TYPE_SIGNALS:
        detail, weight = TYPE_SIGNALS[number_type]
        signals.append(_signal(number_type, f"{e164} {detail}", weight))
    if claimed and region and region != claimed:
        signals.append(
            _signal(
                "claimed_region_mismatch",
                f"{e164} is registered in {region}, but the sender claims to be in {claimed}",
                0.3,
            )
        )
    remaining = 1.0
    for signal in signals:
        remaining *= 1.0 - float(signal["weight"])
    return {
        "number": e164,
        "valid": valid,
        "number_type": number_type,
        "region": region,
        "carrier": carrier.name_for_number(number, "en") or None,
        "risk": round(min(MAX_RISK, 1.0 - remaining), 3),
        "signals": signals,
    }


def _signal(code: str, detail: str, weight: float) -> Signal:
    return {"code": code, "detail": detail, "weight": weight}


class PhoneValidator:
    """The `phone_validator` tool: offline, so it never times out."""

    name = "phone_validator"

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        value, claimed = call_input.get("value"), call_input.get("claimed_region")
        if not isinstance(value, str) or not (claimed is None or isinstance(claimed, str)):
            raise ToolError(
                f"phone_validator needs {{'value': str, 'claimed_region': str|None}}, "
                f"got {call_input!r}"
            )
        try:
            return validate_phone(value, claimed)
        except ValueError as error:
            raise ToolError(str(error)) from error
