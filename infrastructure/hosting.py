"""Shared hosting platforms: names under which anyone can publish a site (github.io, web.app).

The rules are the PRIVATE section of the public suffix list bundled with tldextract (copied to
seed_data/hosting_suffixes.txt by seed_data/reference.py, so nothing is ever fetched) plus a few
site builders the list lacks (seed_data/hosting_supplement.json). Domain reputation gives a user
site there `free_hosting`; indicator lookups never match a user site by the platform's name.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

SEED_DATA = Path(__file__).resolve().parent / "seed_data"


@cache
def _hosting() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(exact suffixes, wildcard parents, path-hosted hosts) where anyone can publish a site."""
    exact: set[str] = set()
    wildcard: set[str] = set()
    by_path: set[str] = set()
    text = (SEED_DATA / "hosting_suffixes.txt").read_text(encoding="utf-8")
    for rule in text.split():
        if rule.startswith("*."):
            wildcard.add(rule[2:])
        elif not rule.startswith("!"):
            exact.add(rule)
    supplement = json.loads((SEED_DATA / "hosting_supplement.json").read_text(encoding="utf-8"))
    for entry in supplement:
        (by_path if entry["owner_in"] == "path" else exact).add(entry["suffix"])
    return frozenset(exact), frozenset(wildcard), frozenset(by_path)


def hosting_suffix(host: str) -> str | None:
    """The shared hosting platform a host is a user site on (github.io for x.github.io), if any.

    The platform's own name (github.io) is not a user site; a path-hosted builder
    (sites.google.com) is one whatever comes after it, since the owner is named in the path.
    """
    exact, wildcard, by_path = _hosting()
    labels = host.split(".")
    for i in range(len(labels)):
        parent = ".".join(labels[i:])
        if parent in by_path:
            return parent
        if i == 0:
            continue
        if parent in exact:
            return parent
        if i >= 2 and ".".join(labels[i:]) in wildcard:
            return ".".join(labels[i - 1 :])
    return None


def owner_site(host: str) -> str | None:
    """The site of a user of a shared host: `someone.github.io` for `a.b.someone.github.io`,
    the host itself for a path-hosted builder (sites.google.com); None if `host` is no user site
    (the platform's own name, or an ordinary domain)."""
    platform = hosting_suffix(host)
    if platform is None:
        return None
    if host == platform:
        return host
    owner = host.removesuffix("." + platform).rsplit(".", 1)[-1]
    return f"{owner}.{platform}"
