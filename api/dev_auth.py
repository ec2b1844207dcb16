"""Developer mode: a signing secret kept in ./.scamtrail/dev-jwt-secret, and tokens signed with it.

When no key is configured, the api verifies with this secret and `scamtrail token` / `scamtrail up`
sign with it, so a developer gets working tokens without setting anything up. The file is created
on first use, readable by its owner only.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

import jwt

from infrastructure.settings import Settings

MINT_HINT = (
    "tokens are signed with SCAMTRAIL_JWT_SECRET; mint one with:"
    " scamtrail token --role analyst --role submitter --tenant demo --ttl 1h"
)


def up_may_print_token(settings: Settings) -> bool:
    """Whether `scamtrail up` may print a ready-made token: only one signed with the developer
    secret. With a configured SCAMTRAIL_JWT_SECRET the secret is a deployment's own, and a live
    token on the console (and in whatever captures it) would be a credential for it; `up` then
    prints MINT_HINT instead. (With a public key nothing here can sign; `up` says so.)"""
    verifies_with_public_key = bool(settings.jwt_public_key or settings.jwt_jwks_file)
    return settings.auth_disabled or settings.jwt_secret is None or verifies_with_public_key


NO_DEV_SECRET = (
    "no developer secret here (./.scamtrail/dev-jwt-secret) and SCAMTRAIL_JWT_SECRET is not set:"
    " run this in the directory where `scamtrail up` runs, or set SCAMTRAIL_JWT_SECRET"
)


def may_sign_here(settings: Settings) -> bool:
    """Whether `scamtrail token` may sign: with a configured secret, or the developer secret
    `scamtrail up` created in this directory. A new developer secret made anywhere else would
    sign tokens the running api refuses."""
    if settings.jwt_secret is not None or settings.jwt_public_key or settings.jwt_jwks_file:
        return True  # a public key: dev_token says tokens come from the issuer
    return Path(settings.dev_jwt_secret_file).exists()


class CannotSign(RuntimeError):
    """The api verifies with a public key: tokens come from the identity provider."""


def signing_secret(settings: Settings) -> str:
    """The configured HS256 secret, else the developer secret (created if missing)."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    path = Path(settings.dev_jwt_secret_file)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            # O_EXCL: two processes starting at once must not each write a different secret.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def dev_token(
    settings: Settings,
    role: str | Iterable[str],
    tenant: str = "demo",
    sub: str = "dev",
    ttl: timedelta = timedelta(hours=12),
) -> str:
    """A token the api started with these settings accepts (HS256 with the configured or the
    developer secret)."""
    if settings.jwt_public_key or settings.jwt_jwks_file:
        raise CannotSign("the api verifies with a public key; get tokens from its issuer")
    roles = [role] if isinstance(role, str) else list(role)
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": sub,
        "tenant": tenant,
        "roles": roles,
        "iat": now,
        "exp": now + int(ttl.total_seconds()),
    }
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, signing_secret(settings), algorithm="HS256")
