"""Score benchmark items with one peer package, inside that peer's own virtualenv.

    <venv>/bin/python -I benchmarks/peer_runner.py PEER < items.jsonl > scores.jsonl

Started by benchmarks/peers.py, once per peer. It imports only the standard library and the
peer package (never the project), so the peer's dependencies cannot clash with ours.

Input: one JSON object per line, `{"kind": "url"|"email"|"sms"|"text", "content": str}`.
Output: exactly one JSON object per input line, in order, flushed as it is written:
`{"score": <the peer's raw score> | null, "error": str | null}`. The raw score is on the
peer's own scale; benchmarks/peers.py normalises it.

- A `url` item is scored with the peer's URL check.
- Any other kind is a message. phish-signals scores it with its own message pipeline (content
  heuristics plus link checks, combined by `score_signals`). The URL-only peers score the
  message as the highest score of the links found in it (at most `MAX_URLS`), and as 0 when
  it has no link, since a URL checker has nothing to flag there.

Network access is blocked inside this process before the peer is imported (`socket` connect
and name resolution raise `OSError`), so no peer option can reach the network while scoring;
benchmarks/peers.py additionally runs this script in an empty network namespace when it can.
Each item gets `ITEM_SECONDS`; an item that takes longer, or raises, gets a null score and its
error, and the run carries on.
"""

from __future__ import annotations

import json
import math
import re
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

MAX_URLS = 50
ITEM_SECONDS = 10.0

_STOP = r"\s<>\"'`{}|\\^\[\]"
_LINK = re.compile(rf"\bhttps?://[^{_STOP}]+", re.IGNORECASE)
_BARE = re.compile(
    r"(?<![\w@./:%-])"
    r"((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,24}))"
    r"(?![a-z0-9-])(?![\w.-]*@)"
    rf"(/[^{_STOP}]*)?",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?)'\"*"
# File extensions that are not top-level domains: "invoice.pdf" is an attachment, not a site.
_NOT_TLDS = frozenset(
    {
        *("pdf", "txt", "jpg", "jpeg", "png", "gif", "bmp", "doc", "docx", "xls", "xlsx"),
        *("ppt", "pptx", "csv", "exe", "dll", "htm", "html", "php", "asp", "aspx", "jsp"),
        *("js", "json", "xml", "gz", "tgz", "rar", "msi", "dmg"),
    }
)

UrlScorer = Callable[[str], float]
MessageScorer = Callable[[str], float]


def extract_urls(text: str) -> list[str]:
    """Links in `text`: http(s):// links, then bare domains such as `usps-redelivery.top/pay`.

    Bare domains are returned as written (without a scheme); e-mail addresses are skipped.
    """
    found: list[str] = []
    for match in _LINK.finditer(text):
        found.append(match.group(0).rstrip(_TRAILING))
    rest = _LINK.sub(" ", text)
    for match in _BARE.finditer(rest):
        if match.group(2).lower() in _NOT_TLDS:
            continue
        found.append(match.group(0).rstrip(_TRAILING))
    unique = list(dict.fromkeys(u for u in found if u))
    return unique[:MAX_URLS]


def with_scheme(url: str) -> str:
    """`url` with `http://` in front when it has no scheme, for peers that require one."""
    return url if re.match(r"^[a-z][a-z0-9+.-]*://", url, re.IGNORECASE) else f"http://{url}"


def block_network() -> None:
    """Make every outgoing connection and name lookup in this process fail with OSError."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError("network access is disabled while scoring peers")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.socket.sendto = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    socket.gethostbyname = refuse
    socket.gethostbyname_ex = refuse
    socket.gethostbyaddr = refuse


def _barb() -> tuple[UrlScorer, MessageScorer | None]:
    from barb.config import load_config
    from barb.main import _analyze_single

    config = load_config()

    def url(value: str) -> float:
        return float(_analyze_single(value, config, explain=False, osint=False).risk_score)

    return url, None


def _phish_signals() -> tuple[UrlScorer, MessageScorer | None]:
    import phish_signals as ps

    def url(value: str) -> float:
        result = ps.analyze_url(with_scheme(value))
        if "riskScore" not in result:
            raise ValueError(result.get("detail") or "phish-signals gave no riskScore")
        return float(result["riskScore"])

    def message(text: str) -> float:
        links = [*ps.extract_urls(text), *(with_scheme(u) for u in extract_urls(text))]
        links = list(dict.fromkeys(links))[:MAX_URLS]
        signals = [
            *ps.check_content(text)["signals"],
            *ps.summarize_url_signals(ps.check_urls(links)),
        ]
        return float(ps.score_signals(signals)["score"])

    return url, message


def _fraudurl() -> tuple[UrlScorer, MessageScorer | None]:
    from fraudurl import cli

    cli._init_worker(False, None)

    def url(value: str) -> float:
        row = cli.score_rows([value])[0]
        if row.get("fraud_verdict") == "ERROR":
            raise ValueError(row.get("error") or "fraudurl could not score this URL")
        return float(row["fraud_probability"])

    return url, None


def _scamgate() -> tuple[UrlScorer, MessageScorer | None]:
    from scamgate import engine
    from scamgate.feeds import FeedIndex

    no_feeds = FeedIndex()

    def url(value: str) -> float:
        return float(engine.check_url(value, feeds=no_feeds).risk_score)

    return url, None


LOADERS: dict[str, Callable[[], tuple[UrlScorer, MessageScorer | None]]] = {
    "barb-phish": _barb,
    "phish-signals": _phish_signals,
    "fraudurl": _fraudurl,
    "scamgate": _scamgate,
}


def score_item(item: dict[str, Any], url: UrlScorer, message: MessageScorer | None) -> float:
    """The peer's raw score for one item (see the module docstring for messages)."""
    content = str(item.get("content") or "")
    if item.get("kind") == "url":
        return url(content.strip())
    if message is not None:
        return message(content)
    links = extract_urls(content)
    if not links:
        return 0.0
    scores: list[float] = []
    failures: list[str] = []
    for link in links:
        try:
            scores.append(url(link))
        except Exception as error:
            failures.append(f"{type(error).__name__}: {error}")
    if not scores:
        raise ValueError(f"no link in the message could be scored ({failures[0]})")
    return max(scores)


class ItemTimeout(Exception):
    """An item took longer than ITEM_SECONDS."""


def _on_alarm(_signum: int, _frame: Any) -> None:
    raise ItemTimeout(f"item took longer than {ITEM_SECONDS:g} s")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in LOADERS:
        print(f"usage: peer_runner.py {{{','.join(LOADERS)}}}", file=sys.stderr)
        return 2
    block_network()
    try:
        url, message = LOADERS[argv[0]]()
    except Exception as error:
        print(f"cannot load {argv[0]}: {type(error).__name__}: {error}", file=sys.stderr)
        return 3
    signal.signal(signal.SIGALRM, _on_alarm)
    out = sys.stdout
    for line in sys.stdin:
        result: dict[str, Any] = {"score": None, "error": None}
        try:
            signal.setitimer(signal.ITIMER_REAL, ITEM_SECONDS)
            try:
                score = score_item(json.loads(line), url, message)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if math.isfinite(score):
                result["score"] = score
            else:
                result["error"] = f"non-finite score {score!r}"
        except Exception as error:
            result["error"] = f"{type(error).__name__}: {error}"[:500]
        out.write(json.dumps(result) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
