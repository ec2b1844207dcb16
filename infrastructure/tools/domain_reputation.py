"""Domain reputation, offline: what a host name alone gives away about who is behind it.

Each signal carries a weight in [0, 1]; the domain's risk is their noisy-OR combination
(1 - product of (1 - weight)), so independent signals add up without ever reaching 1.
The brands' own domains (domain.brands) are trusted outright: risk 0, no signal.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import idna
from confusable_homoglyphs import confusables
from rapidfuzz.distance import Levenshtein

from domain.brands import BRANDS, Brand, brand_of_domain
from domain.extraction import split_host
from domain.tools import ToolError

MAX_RISK = 0.99
RISKY_TLDS = frozenset(
    [
        "top",
        "xyz",
        "icu",
        "click",
        "live",
        "buzz",
        "cn",
        "ru",
        "tk",
        "ml",
        "ga",
        "cf",
        "gq",
        "sbs",
        "cfd",
        "bond",
        "rest",
        "shop",
        "online",
        "site",
        "store",
        "cyou",
        "monster",
        "quest",
        "lat",
        "support",
        "help",
        "work",
        "fit",
        "mom",
        "zip",
        "mov",
    ]
)
SHORTENERS = frozenset(
    [
        "bit.ly",
        "tinyurl.com",
        "t.co",
        "goo.gl",
        "is.gd",
        "ow.ly",
        "cutt.ly",
        "rb.gy",
        "buff.ly",
        "shorturl.at",
        "t.ly",
        "tiny.cc",
        "s.id",
        "v.gd",
        "bl.ink",
        "short.io",
        "rebrand.ly",
        "qrco.de",
    ]
)
CREDENTIAL_WORDS = (
    "login",
    "log-in",
    "signin",
    "sign-in",
    "verify",
    "account",
    "update",
    "secure",
    "wallet",
    "password",
    "unlock",
    "confirm",
    "billing",
)
GENERIC_WORDS = frozenset({"target", "blockchain", "kraken", "office365", "outlook"})
_DIGIT_LOOKALIKES = str.maketrans("013457", "oleast")

Signal = dict[str, Any]


def assess_domain(domain: str, url: str | None) -> dict[str, Any]:
    """The contract output of `domain_reputation` (domain.tools) for one host."""
    host = domain.strip().lower().rstrip(".").removeprefix("www.")
    if not host or len(host) > 253 or any(c.isspace() or c in "/@" for c in host):
        raise ValueError(f"not a host name: {domain!r}")
    if _is_ip(host):
        signals = [_signal("ip_literal", f"{host} is a bare IP address, not a name", 0.5)]
        signals += _path_signals(url)
        return _result(host, host, signals)
    unicode_host = _unicode(host)
    subdomain, registered, suffix = split_host(unicode_host)
    if brand_of_domain(registered) is not None:
        return _result(host, split_host(host)[1], [])
    label = registered.removesuffix("." + suffix) if suffix else registered
    signals = [
        *_script_signals(host, unicode_host, label),
        *_brand_signals(label, subdomain, registered),
    ]
    tld = suffix.rsplit(".", 1)[-1]
    if tld in RISKY_TLDS:
        signals.append(
            _signal(
                "risky_tld", f".{tld} is a top-level domain cheap and common in scam campaigns", 0.3
            )
        )
    if registered in SHORTENERS:
        signals.append(
            _signal(
                "url_shortener",
                f"{registered} is a link shortener that hides the real destination",
                0.3,
            )
        )
    if subdomain.count(".") >= 2:
        signals.append(
            _signal(
                "deep_subdomain",
                f"{host} nests {subdomain.count('.') + 1} subdomain levels under {registered}",
                0.2,
            )
        )
    signals += _path_signals(url)
    return _result(host, split_host(host)[1], signals)


def _signal(code: str, detail: str, weight: float) -> Signal:
    return {"code": code, "detail": detail, "weight": weight}


def _result(host: str, registered: str, signals: list[Signal]) -> dict[str, Any]:
    remaining = 1.0
    for signal in signals:
        remaining *= 1.0 - float(signal["weight"])
    risk = round(min(MAX_RISK, 1.0 - remaining), 3)
    return {"domain": host, "registered_domain": registered, "risk": risk, "signals": signals}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _unicode(host: str) -> str:
    try:
        return idna.decode(host) if "xn--" in host else host
    except (idna.IDNAError, UnicodeError):
        return host


def _script_signals(host: str, unicode_host: str, label: str) -> list[Signal]:
    if unicode_host.isascii():
        return []
    ascii_form = host if host.isascii() else _punycode(host)
    signals = [_signal("idn", f"{unicode_host} is an internationalised name ({ascii_form})", 0.2)]
    if confusables.is_mixed_script(label) or confusables.is_dangerous(label):
        signals.append(
            _signal(
                "homoglyph", f"{label!r} mixes scripts or uses letters that imitate Latin ones", 0.6
            )
        )
    return signals


def _punycode(host: str) -> str:
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        return host


def _skeleton(label: str) -> str:
    """The label as it reads to the eye: homoglyphs and look-alike digits as Latin letters."""
    found = confusables.is_confusable(label, greedy=True, preferred_aliases=["latin"]) or []
    latin = {
        item["character"]: item["homoglyphs"][0]["c"]
        for item in found
        if item["homoglyphs"] and item["homoglyphs"][0]["c"].isascii()
    }
    text = "".join(latin.get(c, c) for c in label).lower().translate(_DIGIT_LOOKALIKES)
    return text.replace("rn", "m").replace("vv", "w")


def _brand_signals(label: str, subdomain: str, registered: str) -> list[Signal]:
    plain = _skeleton(label).replace("-", "")
    parts = _skeleton(f"{subdomain}.{label}").split(".")
    tokens = {t for part in parts for t in part.split("-")}
    joined = [part.replace("-", "") for part in parts]
    for brand in BRANDS:
        if label != brand.label and any(_looks_like(plain, name) for name in _names(brand)):
            return [
                _signal(
                    "lookalike_brand",
                    f"{registered} imitates {brand.name} "
                    f"({brand.label}) with a slightly different spelling",
                    0.6,
                )
            ]
        # Prefixes only for long names: "chase" ends "purchase", "apple" starts "applebees".
        prefixed = len(brand.label) >= 6 and brand.label not in GENERIC_WORDS
        if brand.label in tokens or any(
            part == brand.label or (prefixed and part.startswith(brand.label)) for part in joined
        ):
            return [
                _signal(
                    "brand_embedded",
                    f"{registered} uses the name {brand.name} but is not a {brand.name} domain",
                    0.5,
                )
            ]
    return []


def _names(brand: Brand) -> set[str]:
    """The brand's label and the long labels of its own domains (steamcommunity, icloud)."""
    own = {domain.split(".")[0].replace("-", "") for domain in brand.domains}
    return {brand.label} | {name for name in own if len(name) >= 6}


def _looks_like(plain: str, brand: str) -> bool:
    if plain == brand:
        return True
    # Short names (ups, irs) collide with ordinary words, so they only count when spelt exactly;
    # five letters allow one substituted letter, longer names one or two edits.
    if len(brand) < 5 or (len(brand) == 5 and len(plain) != 5):
        return False
    allowed = 1 if len(brand) < 8 else 2
    return Levenshtein.distance(plain, brand, score_cutoff=allowed) <= allowed


def _path_signals(url: str | None) -> list[Signal]:
    if not url:
        return []
    parts = urlsplit(url if "://" in url else "http://" + url)
    rest = f"{parts.path}?{parts.query}".lower()
    words = [w for w in CREDENTIAL_WORDS if w in rest]
    if not words:
        return []
    return [_signal("credential_path", f"the link's path asks for {', '.join(words[:3])}", 0.2)]


class DomainReputation:
    """The `domain_reputation` tool: offline, so it never times out."""

    name = "domain_reputation"

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        domain, url = call_input.get("domain"), call_input.get("url")
        if not isinstance(domain, str) or not (url is None or isinstance(url, str)):
            raise ToolError(
                f"domain_reputation needs {{'domain': str, 'url': str|None}}, got {call_input!r}"
            )
        try:
            return assess_domain(domain, url)
        except ValueError as error:
            raise ToolError(str(error)) from error
