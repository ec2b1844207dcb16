"""Brand mentions that match only under Unicode case rules, and text nobody planned for: the
extractor must never raise, or the analysis crashes before EntitiesExtracted is recorded."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.brands import BRANDS
from domain.events import Entity
from domain.extraction import extract_entities

pytestmark = pytest.mark.unit


def impersonated(entities: tuple[Entity, ...]) -> Entity | None:
    return next(
        (e for e in entities if e.kind == "signal" and e.value == "impersonated_brand"), None
    )


@pytest.mark.parametrize(
    ("text", "brand", "mention"),
    [
        ("Your parcel: u\u017fps says pay now at http://evil.top", "USPS", "usps"),  # long s
        ("Verify your Apple \u0130D at http://evil.top today", "Apple", "apple id"),
        ("\u0130CLOUD storage full, log in at http://evil.top", "Apple", "icloud"),
        ("\u212araken wallet: verify at http://evil.top", None, None),  # Kelvin sign
    ],
)
def test_a_brand_named_with_a_unicode_case_variant_is_still_impersonated(
    text: str, brand: str | None, mention: str | None
) -> None:
    signal = impersonated(extract_entities(text, "sms"))
    if brand is None:
        return  # no such brand: it is enough not to raise
    assert signal is not None
    assert signal.details == {"matched": [mention], "brand": brand}


def test_every_brand_mention_in_upper_case_is_recognised() -> None:
    for brand in BRANDS:
        for mention in brand.mentions:
            signal = impersonated(
                extract_entities(f"{mention.upper()}: pay now at http://evil.top", "sms")
            )
            assert signal is not None, mention
            assert signal.details["brand"] == brand.name


_TRICKY = (
    "\u00aa\u00ba\u00df\u1e9e\ufb00\ufb01\u01c5\u01c8\u01cb\u03c3\u03c2\u03a3\u0130\u0131"
    "\u017f\u212a\u212b\u0345\u00b5\u1c80\uff0e\u3002@.:/-_ $\u00a3\u20ac+0123456789"
)
_MENTIONS = [m for brand in BRANDS for m in brand.mentions]
# Spellings a case-insensitive match accepts: long s, dotted capital I, Kelvin sign.
_VARIANTS = [
    variant
    for m in _MENTIONS
    for variant in (
        m.replace("s", "\u017f"),
        m.upper().replace("I", "\u0130"),
        m.replace("k", "\u212a"),
    )
    if variant not in (m, m.upper())
]
_WORDS = _MENTIONS + _VARIANTS + ["http://evil.top", "www.", ".top", "pay now"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40), st.text(alphabet=_TRICKY, max_size=20), st.sampled_from(_WORDS)
        ),
        max_size=12,
    ).map(" ".join),
    st.sampled_from(["sms", "email", "text", "url", "phone"]),
)
def test_extraction_never_raises_on_any_text(text: str, kind: str) -> None:
    entities = extract_entities(text, kind)  # type: ignore[arg-type]
    assert all(isinstance(e, Entity) for e in entities)
