"""Score benchmark items with open-source phishing/scam heuristics from PyPI, for comparison.

Each peer is installed at a pinned version into its own virtualenv, created once and reused
from `cache_dir/venvs/<name>-<version>`, so its dependencies never touch the project's. Items
are then scored by ONE subprocess per peer: the venv's python running
benchmarks/peer_runner.py, which reads items as JSON lines and writes one score per line.

Peers (all MIT, all scoring offline):

| peer          | URL item                          | message item                      | scale |
|---------------|-----------------------------------|-----------------------------------|-------|
| barb-phish    | `_analyze_single` risk 0-10       | max over the message's links      | / 10  |
| phish-signals | `analyze_url` riskScore 0-100     | own pipeline, `score_signals` 0-100 | / 100 |
| fraudurl      | `score_rows` fraud probability    | max over the message's links      | as is |
| scamgate      | `engine.check_url` risk 0-100     | max over the message's links      | / 100 |

Every score is divided by its scale and clamped to [0, 1]. A message (kind `email`, `sms`,
`text` or anything but `url`) with no link scores 0 with the URL-only peers: a URL checker has
nothing to flag there, and this is what a user of that tool would see. Links are found with a
simple pattern for http(s):// links and bare domains (`usps-redelivery.top/pay`); see
`peer_runner.extract_urls`. phish-signals gets those links as well as the ones its own
extractor finds, since its extractor skips bare domains.

Scoring never reaches the network: the runner disables sockets before importing the peer, the
peers' online options (barb `osint`, fraudurl enrichment, scamgate RDAP and feeds) stay off,
and the runner is started in an empty network namespace (`unshare -n`) when that works here.
Installing a peer is the only step that may need the network; if it fails, that peer's scores
are all None and its `error` says why. `score_with_peers` never raises.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNNER = Path(__file__).resolve().with_name("peer_runner.py")
MAX_CONTENT = 65_536
INSTALL_SECONDS = 900
RUN_BASE_SECONDS = 300.0
RUN_SECONDS_PER_ITEM = 0.5
DEFAULT_PEERS = ("barb-phish", "phish-signals", "fraudurl")


@dataclass(frozen=True)
class PeerSpec:
    """A peer package: its PyPI name, pinned version, import name and score scale."""

    name: str
    version: str
    module: str
    scale: float

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


PEERS: dict[str, PeerSpec] = {
    spec.name: spec
    for spec in (
        PeerSpec("barb-phish", "1.8.0", "barb", 10.0),
        PeerSpec("phish-signals", "0.2.2", "phish_signals", 100.0),
        PeerSpec("fraudurl", "1.0.1", "fraudurl", 1.0),
        PeerSpec("scamgate", "0.3.3", "scamgate", 100.0),
    )
}


@dataclass
class PeerScores:
    """One peer's scores for the items, in item order; None where it could not score one."""

    name: str
    version: str
    scores: list[float | None]
    seconds: float
    error: str | None


class PeerUnavailable(Exception):
    """The peer's virtualenv could not be created or the package not installed."""


def score_with_peers(
    items: list[dict[str, Any]],
    cache_dir: Path,
    peers: Sequence[str] = DEFAULT_PEERS,
) -> list[PeerScores]:
    """Score `items` (`{"kind": ..., "content": ...}`) with each peer, scores in [0, 1].

    `seconds` is the scoring time of the peer's run, without the one-off venv creation.
    `error` is None when every item was scored; otherwise it says what failed (the install,
    the run, or how many items and the first item error).
    """
    payload = [_payload(item) for item in items]
    return [_score_one(name, payload, Path(cache_dir)) for name in peers]


def _payload(item: Any) -> dict[str, str]:
    if not isinstance(item, dict):
        return {"kind": "text", "content": ""}
    kind = item.get("kind")
    content = item.get("content")
    return {
        "kind": kind if isinstance(kind, str) else "text",
        "content": (content if isinstance(content, str) else "")[:MAX_CONTENT],
    }


def _score_one(name: str, payload: list[dict[str, str]], cache_dir: Path) -> PeerScores:
    spec = PEERS.get(name)
    empty: list[float | None] = [None] * len(payload)
    if spec is None:
        known = ", ".join(PEERS)
        return PeerScores(name, "", empty, 0.0, f"unknown peer {name!r} (known: {known})")
    if not payload:
        return PeerScores(name, spec.version, [], 0.0, None)
    try:
        python = ensure_venv(spec, cache_dir)
    except Exception as error:
        return PeerScores(name, spec.version, empty, 0.0, f"install failed: {error}")
    started = time.perf_counter()
    try:
        scores, error_text = _run(spec, python, payload, cache_dir)
    except Exception as error:
        scores, error_text = empty, f"run failed: {type(error).__name__}: {error}"
    return PeerScores(name, spec.version, scores, time.perf_counter() - started, error_text)


def ensure_venv(spec: PeerSpec, cache_dir: Path) -> Path:
    """The python of the peer's venv, created and installed on first use.

    A venv counts as ready only once a marker file is written after a successful install and
    import; a half-built one is removed and built again. A lock file keeps concurrent
    benchmark runs from building the same venv twice.
    """
    venvs = cache_dir / "venvs"
    root = venvs / f"{spec.name}-{spec.version}"
    python = root / "bin" / "python"
    marker = root / ".scamtrail-peer-ready"
    if marker.exists() and python.exists():
        return python
    venvs.mkdir(parents=True, exist_ok=True)
    with _locked(venvs / f"{spec.name}-{spec.version}.lock"):
        if marker.exists() and python.exists():
            return python
        if root.exists():
            shutil.rmtree(root)
        base = shutil.which("python3") or sys.executable
        _check([base, "-m", "venv", str(root)], 300, "venv")
        _check(
            [str(python), "-m", "pip", "install", "--quiet", "--no-input", spec.requirement],
            INSTALL_SECONDS,
            "pip install",
        )
        _check([str(python), "-I", "-c", f"import {spec.module}"], 120, "import")
        marker.write_text(f"{spec.name}=={spec.version}\n")
    return python


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check(command: list[str], timeout: float, step: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PeerUnavailable(f"{step}: {error}") from error
    if done.returncode != 0:
        raise PeerUnavailable(f"{step} exited {done.returncode}: {_tail(done.stderr)}")


def _run(
    spec: PeerSpec, python: Path, payload: list[dict[str, str]], cache_dir: Path
) -> tuple[list[float | None], str | None]:
    home = cache_dir / "home" / f"{spec.name}-{spec.version}"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "SCAMGATE_RDAP": "off",
    }
    command = [*_offline_prefix(), str(python), "-I", str(RUNNER), spec.name]
    timeout = RUN_BASE_SECONDS + RUN_SECONDS_PER_ITEM * len(payload)
    with tempfile.TemporaryDirectory(prefix="peer-run-") as tmp:
        inputs, outputs, errors = (Path(tmp) / n for n in ("in.jsonl", "out.jsonl", "err.txt"))
        inputs.write_text("".join(json.dumps(item) + "\n" for item in payload), encoding="utf-8")
        status: str | None = None
        with inputs.open("rb") as stdin, outputs.open("wb") as stdout, errors.open("wb") as err:
            try:
                code = subprocess.run(
                    command,
                    stdin=stdin,
                    stdout=stdout,
                    stderr=err,
                    cwd=home,
                    env=env,
                    timeout=timeout,
                    check=False,
                ).returncode
                if code != 0:
                    status = f"runner exited {code}"
            except subprocess.TimeoutExpired:
                status = f"runner killed after {timeout:g} s"
        lines = outputs.read_text(encoding="utf-8", errors="replace").splitlines()
        stderr = errors.read_text(encoding="utf-8", errors="replace")
    scores, failures = _parse(lines[: len(payload)], spec.scale)
    scores += [None] * (len(payload) - len(scores))
    problems: list[str] = []
    if status is not None or len(lines) < len(payload):
        problems.append(
            f"{status or 'runner stopped'} after {min(len(lines), len(payload))} of "
            f"{len(payload)} items: {_tail(stderr)}".rstrip(": ")
        )
    if failures:
        problems.append(f"{len(failures)} of {len(payload)} items failed, first: {failures[0]}")
    return scores, "; ".join(problems) or None


def _parse(lines: list[str], scale: float) -> tuple[list[float | None], list[str]]:
    scores: list[float | None] = []
    failures: list[str] = []
    for line in lines:
        try:
            record = json.loads(line)
            raw = record.get("score")
            error = record.get("error")
        except (ValueError, AttributeError):
            raw, error = None, f"unreadable runner output {line[:80]!r}"
        if isinstance(raw, int | float) and math.isfinite(raw):
            scores.append(min(max(float(raw) / scale, 0.0), 1.0))
        else:
            scores.append(None)
            failures.append(str(error or "no score"))
    return scores, failures


@functools.cache
def _offline_prefix() -> tuple[str, ...]:
    """`unshare -n` (or `-rn` without root) when this host allows an empty network namespace."""
    if shutil.which("unshare") is None:
        return ()
    for prefix in (("unshare", "-n"), ("unshare", "-rn")):
        try:
            probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return prefix
    return ()


def _tail(text: str, limit: int = 400) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-limit:]
