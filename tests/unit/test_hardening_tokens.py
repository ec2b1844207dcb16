"""Tokens: `scamtrail up` prints a live token only when it is signed with the developer secret;
time claims must be numbers and a token's lifetime is bounded; a token in a query parameter is
kept out of the logs however its name or value is percent-encoded."""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from pydantic import SecretStr
from rich.console import Console

from api.auth import TokenVerifier
from api.caller import NotAuthenticated
from api.cli import auth as cli_auth
from api.cli import database as cli_database
from api.cli import up as cli_up
from api.dev_auth import MINT_HINT, up_may_print_token
from api.redaction import REDACTED, RedactTokens, redact
from infrastructure.settings import Settings, load_settings
from tests.auth import TEST_SECRET, token

pytestmark = pytest.mark.unit


# -- `scamtrail up` and its token ------------------------------------------------------------


def test_up_prints_a_token_only_for_the_developer_secret(tmp_path: Path) -> None:
    dev = load_settings(dev_jwt_secret_file=str(tmp_path / "dev"))
    assert up_may_print_token(dev)
    assert not up_may_print_token(dev.model_copy(update={"jwt_secret": SecretStr("prod")}))
    # Nothing is signed (auth off: no token needed; a public key: nothing here can sign).
    assert up_may_print_token(dev.model_copy(update={"auth_disabled": True}))
    assert up_may_print_token(dev.model_copy(update={"jwt_public_key": "-----BEGIN x"}))


@contextlib.contextmanager
def _up_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[io.StringIO]:
    """Run `scamtrail up` with its services and the system faked; yield what it printed."""
    import infrastructure.embedded

    out = io.StringIO()
    quiet = Console(file=out, width=400)
    monkeypatch.setattr(cli_up, "console", quiet)
    monkeypatch.setattr(cli_auth, "console", quiet)
    monkeypatch.setattr(
        infrastructure.embedded, "embedded_services", lambda *a, **k: contextlib.nullcontext({})
    )
    monkeypatch.setattr(cli_database, "seed_database", lambda settings: None)

    async def answers_at_once(settings: Settings, host: str) -> None:
        cli_up.announce(settings, host)  # what the real one prints once the api answers

    monkeypatch.setattr(cli_up, "whole_system", answers_at_once)
    monkeypatch.setenv("SCAMTRAIL_DEV_JWT_SECRET_FILE", str(tmp_path / "dev-secret"))
    cli_up.up(port=None, host="127.0.0.1")
    yield out


def test_up_with_a_configured_secret_prints_how_to_mint_not_a_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SCAMTRAIL_JWT_SECRET", TEST_SECRET)
    with _up_output(monkeypatch, tmp_path) as out:
        printed = out.getvalue()
    assert "eyJ" not in printed
    assert MINT_HINT in printed.replace("\n", "")


def test_up_with_the_developer_secret_prints_a_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SCAMTRAIL_JWT_SECRET", raising=False)
    with _up_output(monkeypatch, tmp_path) as out:
        printed = out.getvalue()
    assert "eyJ" in printed and "scamtrail token" not in printed


# -- time claims and lifetime ----------------------------------------------------------------


@pytest.fixture(scope="module")
def verifier() -> TokenVerifier:
    return TokenVerifier.from_settings(load_settings(jwt_secret=TEST_SECRET))


def _signed(**claims: Any) -> str:
    body = {"sub": "ana", "tenant": "bank", "roles": ["analyst"], **claims}
    return jwt.encode(body, TEST_SECRET, algorithm="HS256")


# Claims built when the test runs, not when it is collected: a long run (a loaded machine)
# would otherwise find these tokens expired, and the test would see the wrong refusal.
@pytest.mark.parametrize(
    ("claims", "name"),
    [
        (lambda now: {"exp": str(now + 600)}, "exp"),
        (lambda now: {"exp": now + 600, "iat": str(now)}, "iat"),
        (lambda now: {"exp": now + 600, "nbf": str(now - 5)}, "nbf"),
        (lambda now: {"exp": True}, "exp"),
    ],
)
def test_time_claims_that_are_not_numbers_are_refused(
    verifier: TokenVerifier, claims: Callable[[int], dict[str, Any]], name: str
) -> None:
    with pytest.raises(NotAuthenticated, match=name):
        verifier.verify(_signed(**claims(int(time.time()))))


def test_a_year_9999_expiry_is_refused(verifier: TokenVerifier) -> None:
    with pytest.raises(NotAuthenticated, match="token lifetime exceeds 86400 s"):
        verifier.verify(token(exp=253402300000))


def test_lifetime_is_measured_from_now_without_iat(verifier: TokenVerifier) -> None:
    now = int(time.time())
    with pytest.raises(NotAuthenticated, match="lifetime exceeds"):
        verifier.verify(_signed(exp=now + 25 * 3600))
    assert verifier.verify(_signed(exp=now + 23 * 3600)).tenant == "bank"


def test_tokens_within_the_lifetime_are_accepted(verifier: TokenVerifier) -> None:
    assert verifier.verify(token(ttl_s=24 * 3600)).actor == "user:tester"
    # An old iat with a near exp: still a 24 h token, whatever the time now.
    now = int(time.time())
    assert verifier.verify(_signed(iat=now - 20 * 3600, exp=now + 3600)).tenant == "bank"


def test_the_lifetime_bound_is_a_setting() -> None:
    short = TokenVerifier.from_settings(
        load_settings(jwt_secret=TEST_SECRET, max_token_lifetime_s=60)
    )
    with pytest.raises(NotAuthenticated, match="token lifetime exceeds 60 s"):
        short.verify(token(ttl_s=120))
    assert short.verify(token(ttl_s=60)).tenant == "public"


# -- redaction of percent-encoded query parameters -------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "GET /tasks/t1/events?t%6Fken=opaque-secret&after=3 HTTP/1.1",
        "GET /tasks/t1/events?after=3&%74%6F%6B%65%6E=opaque-secret HTTP/1.1",
        "GET /ws/tasks?ids=a&T%256Fken=opaque-secret HTTP/1.1",  # encoded twice over
        "GET /ws/tasks?ids=a&x=%65yJhbGci.eyJzdWIi.c2ln HTTP/1.1",  # a percent-encoded JWT
        "GET /ws/tasks?ids=a&access_t%6Fken=opaque-secret HTTP/1.1",
    ],
)
def test_percent_encoded_token_parameters_are_redacted(line: str) -> None:
    redacted = redact(line)
    assert "opaque-secret" not in redacted and "c2ln" not in redacted
    assert REDACTED in redacted and redacted.startswith("GET /")


def test_other_parameters_are_kept() -> None:
    line = "GET /tasks?after=3&q=hello%20world&limit=5 HTTP/1.1"
    assert redact(line) == line


def test_the_access_log_record_loses_the_encoded_token() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/tasks/t/events?t%6Fken=opaque-secret", "1.1", 200), None,
    )  # fmt: skip
    assert RedactTokens().filter(record)
    assert "opaque-secret" not in record.getMessage()
    assert isinstance(record.args, tuple) and record.args[-1] == 200
