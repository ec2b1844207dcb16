"""Domain reputation, offline: what a host name alone gives away about who is behind it.

Each signal carries a weight in [0, 1]; the domain's risk is their noisy-OR combination
(1 - product of (1 - weight)), so independent signals add up without ever reaching 1.

Trusted outright (risk 0, no signal) are the brands' own domains (domain.brands) and the most
linked-to sites (npm top-sites, seed_data/popular_sites.json; the output then says `popular` and
gives the `rank`), except a user site on a shared host: x.github.io or x.web.app is anyone's, so
it gets `free_hosting` instead (the public suffix list's private section plus a few site builders,
seed_data/hosting_*). Risky TLDs and their weights come from phishing rates published with
fraudurl (seed_data/risky_tlds.json). seed_data/SOURCES.md documents every file; all are read
once per process.
"""

from __future__ import annotations

import ipaddress
import json
import re
import unicodedata
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import idna
from confusable_homoglyphs import confusables

from domain.brands import BRANDS, Brand, brand_of_domain
from domain.extraction import split_host
from domain.tools import ToolError
from infrastructure.hosting import SEED_DATA
from infrastructure.hosting import hosting_suffix as hosting_suffix

MAX_RISK = 0.99
LOOKALIKE_WEIGHT = 0.55
FREE_HOSTING_WEIGHT = 0.3
LURE_WEIGHT = 0.3
CREDENTIAL_HOST_WEIGHT = 0.35
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
LURE_WORDS = frozenset({"giveaway", "airdrop", "claim", "gift", "bonus", "reward", "prize", "free"})
HOST_CREDENTIAL_WORDS = frozenset(
    {
        "login",
        "signin",
        "verify",
        "verification",
        "secure",
        "account",
        "wallet",
        "connect",
        "support",
        "update",
        "unlock",
        "recovery",
        "auth",
    }
)
# Words that pad a brand inside a scam host ("secure-paypa1", "my-netfIix-login"): dropped before
# a label is compared with the brands.
AFFIX_WORDS = LURE_WORDS | HOST_CREDENTIAL_WORDS | {"my", "the", "online", "app", "official"}
_DIGIT_LOOKALIKES = str.maketrans("013457", "oleast")
_VISUAL_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))
_TOKEN_SPLIT = re.compile(r"[-.0-9]+")

Signal = dict[str, Any]


@cache
def _popular() -> dict[str, int]:
    """Registered domain -> best rank in npm top-sites (seed_data/popular_sites.json)."""
    ranks: dict[str, int] = {}
    entries = json.loads((SEED_DATA / "popular_sites.json").read_text(encoding="utf-8"))
    for entry in entries:
        registered = split_host(entry["domain"])[1]
        ranks[registered] = min(ranks.get(registered, entry["rank"]), entry["rank"])
    return ranks


@cache
def _risky_tlds() -> dict[str, float]:
    """TLD -> signal weight, from fraudurl's phishing rates (seed_data/risky_tlds.json)."""
    data = json.loads((SEED_DATA / "risky_tlds.json").read_text(encoding="utf-8"))
    return {tld: float(entry["weight"]) for tld, entry in data["tlds"].items()}


def popular_rank(registered_domain: str) -> int | None:
    """The rank of a registered domain among the most linked-to sites, if it is one of them."""
    return _popular().get(registered_domain)


def risky_tld_weight(tld: str) -> float | None:
    """The signal weight of a top-level domain common in phishing, None for the others."""
    return _risky_tlds().get(tld)


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
    ascii_registered = split_host(host)[1]
    rank = popular_rank(ascii_registered)
    platform = hosting_suffix(unicode_host)
    if platform is not None or registered in SHORTENERS:
        rank = None  # anyone's page or link: the platform's fame says nothing about this one
    elif rank is not None or brand_of_domain(registered) is not None:
        return _result(host, ascii_registered, [], rank)
    label = registered.removesuffix("." + suffix) if suffix else registered
    if platform is not None:
        # The owner's part of the name: "someone" in someone.github.io, not the platform's.
        owner = unicode_host.removesuffix(platform).rstrip(".")
        subdomain, _, label = owner.rpartition(".")
        registered = f"{label}.{platform}" if label else platform
    signals = [
        *_script_signals(host, unicode_host, label),
        *_brand_signals(label, subdomain, registered),
        *_word_signals(subdomain, label),
    ]
    signals += _placement_signals(host, subdomain, registered, suffix, platform)
    signals += _path_signals(url)
    return _result(host, ascii_registered, signals, rank)


def _placement_signals(
    host: str, subdomain: str, registered: str, suffix: str, platform: str | None
) -> list[Signal]:
    """What where the name sits says: a user site on a shared host, a top-level domain with a
    high phishing rate, a link shortener, subdomains nested deep under the registered name."""
    signals: list[Signal] = []
    if platform is not None:
        signals.append(
            _signal(
                "free_hosting",
                f"{host} is a user site on {platform}, a shared host where anyone can publish "
                "without saying who they are",
                FREE_HOSTING_WEIGHT,
            )
        )
    tld = suffix.rsplit(".", 1)[-1]
    tld_weight = risky_tld_weight(tld)
    if tld_weight is not None:
        signals.append(
            _signal(
                "risky_tld",
                f".{tld} is a top-level domain with a high phishing rate in public feeds",
                tld_weight,
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
    return signals


def _signal(code: str, detail: str, weight: float) -> Signal:
    return {"code": code, "detail": detail, "weight": weight}


def _result(
    host: str, registered: str, signals: list[Signal], rank: int | None = None
) -> dict[str, Any]:
    remaining = 1.0
    for signal in signals:
        remaining *= 1.0 - float(signal["weight"])
    risk = round(min(MAX_RISK, 1.0 - remaining), 3)
    result: dict[str, Any] = {
        "domain": host,
        "registered_domain": registered,
        "risk": risk,
        "signals": signals,
    }
    if rank is not None:
        result |= {"popular": True, "rank": rank}
    return result


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


@cache
def _fold(text: str) -> str:
    """Text as Latin letters: accents dropped (NFKD), homoglyphs of other scripts replaced."""
    if text.isascii():
        return text.lower()
    bare = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    if bare.isascii():
        return bare.lower()
    found = confusables.is_confusable(bare, greedy=True, preferred_aliases=["latin"]) or []
    latin = {
        item["character"]: item["homoglyphs"][0]["c"]
        for item in found
        if item["homoglyphs"] and item["homoglyphs"][0]["c"].isascii()
    }
    return "".join(latin.get(c, c) for c in bare).lower()


@cache
def _visual(text: str) -> str:
    """How a folded label reads at a glance: 0→o, 1→l, rn→m, vv→w, cl→d."""
    text = text.translate(_DIGIT_LOOKALIKES)
    for pair, letter in _VISUAL_PAIRS:
        text = text.replace(pair, letter)
    return text


def _cores(folded_label: str) -> set[str]:
    """The label with the padding words (secure-, my-, -login) taken off, hyphens dropped."""
    parts = [p for p in folded_label.split("-") if p]
    kept = [p for p in parts if p not in AFFIX_WORDS]
    cores = {"".join(parts), "".join(kept)}
    for core in list(cores):
        for word in AFFIX_WORDS:
            if len(core) - len(word) >= 4:
                if core.startswith(word):
                    cores.add(core.removeprefix(word))
                if core.endswith(word):
                    cores.add(core.removesuffix(word))
    return {core for core in cores if core}


def _brand_signals(label: str, subdomain: str, registered: str) -> list[Signal]:
    parts = f"{subdomain}.{label}".lower().split(".")
    tokens = {t for part in parts for t in part.split("-")}
    joined = [part.replace("-", "") for part in parts]
    raw_cores = _cores(label.lower())
    folded_cores = _cores(_fold(label))
    for brand in BRANDS:
        names = _names(brand)
        embedded = brand.label in tokens or brand.label in joined or bool(names & raw_cores)
        if not embedded and any(_looks_like(c, name) for c in folded_cores for name in names):
            return [
                _signal(
                    "lookalike_brand",
                    f"{registered} imitates {brand.name} "
                    f"({brand.label}) with a slightly different spelling",
                    LOOKALIKE_WEIGHT,
                )
            ]
        # Prefixes only for long names: "chase" ends "purchase", "apple" starts "applebees".
        prefixed = len(brand.label) >= 6 and brand.label not in GENERIC_WORDS
        if embedded or (prefixed and any(part.startswith(brand.label) for part in joined)):
            return [
                _signal(
                    "brand_embedded",
                    f"{registered} uses the name {brand.name} but is not a {brand.name} domain",
                    0.5,
                )
            ]
    return []


@cache
def _names(brand: Brand) -> frozenset[str]:
    """The brand's label and the long labels of its own domains (steamcommunity, icloud)."""
    own = {domain.split(".")[0].replace("-", "") for domain in brand.domains}
    return frozenset({brand.label} | {name for name in own if len(name) >= 6})


def _looks_like(core: str, brand: str) -> bool:
    """Whether `core` reads as `brand` to a hurried eye.

    Equal once look-alike characters are read as letters (rnicrosoft, paypa1), or, for names of
    five letters or more, one doubled or dropped letter (paypall, gogle) or one swap of
    neighbours (paypla); names of six or more also allow one substituted letter (netfiix). Both
    must start with the same letter and differ in length by at most one, so that ordinary words
    sharing part of a name (metalwork, applebees, purchase) stay apart; shorter names (meta, ups)
    count only when spelt exactly.
    """
    seen, name = _visual(core), _visual(brand)
    if seen == name:
        return True
    if len(brand) < 5 or abs(len(seen) - len(name)) > 1 or seen[:1] != name[:1]:
        return False
    if len(seen) != len(name):
        longer, shorter = (seen, name) if len(seen) > len(name) else (name, seen)
        return any(
            longer[i] == longer[i - 1] and longer[:i] + longer[i + 1 :] == shorter
            for i in range(1, len(longer))
        )
    diff = [i for i, (a, b) in enumerate(zip(seen, name, strict=True)) if a != b]
    if len(diff) == 2 and diff[1] == diff[0] + 1:
        i = diff[0]
        return seen[i] == name[i + 1] and seen[i + 1] == name[i]
    return len(diff) == 1 and len(brand) >= 6


def _word_signals(subdomain: str, label: str) -> list[Signal]:
    """Lure and log-in words spelt out in the host name (free-gift, walletconnect, login-)."""
    tokens = [t for t in _TOKEN_SPLIT.split(_fold(f"{subdomain}.{label}")) if t]
    lure: list[str] = []
    credential: list[str] = []
    for token in tokens:
        for word in _segment(token) or ():
            if word in LURE_WORDS and word not in lure:
                lure.append(word)
            elif word in HOST_CREDENTIAL_WORDS and word not in credential:
                credential.append(word)
    signals = []
    if lure:
        signals.append(
            _signal(
                "lure_words",
                f"the host name promises something for nothing: {', '.join(lure[:3])}",
                LURE_WEIGHT,
            )
        )
    if credential:
        signals.append(
            _signal(
                "credential_words_in_host",
                f"the host name asks for a log-in or wallet: {', '.join(credential[:3])}",
                CREDENTIAL_HOST_WEIGHT,
            )
        )
    return signals


@cache
def _vocabulary() -> frozenset[str]:
    brands = {brand.label for brand in BRANDS if len(brand.label) >= 4}
    return frozenset(LURE_WORDS | HOST_CREDENTIAL_WORDS | brands)


@cache
def _segment(token: str) -> tuple[str, ...] | None:
    """`token` cut wholly into known words (lure, log-in, brand names, a plural s), or None.

    A token counts only if every letter belongs to a known word, so "walletconnect" and
    "securepaypal" split while "accountant" or "freedom" (a word plus an unknown rest) do not.
    """
    if not token:
        return ()
    vocabulary = _vocabulary()
    for end in range(len(token), 0, -1):
        head = token[:end]
        word = head[:-1] if head.endswith("s") and head[:-1] in vocabulary else head
        if word in vocabulary:
            rest = _segment(token[end:])
            if rest is not None:
                return (word, *rest)
    return None


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
