"""JWT bearer tokens → `Caller`. One verifier per app, built from settings at start.

Claims: `sub`, `tenant`, `roles` and `exp` are required; `aud` and `iss` are checked when the
settings name them. `exp`, `iat` and `nbf` must be JSON numbers, and a token may live at most
`max_token_lifetime_s` (exp - iat, or exp - now without `iat`): a leaked token signed to last for
years is not a key for years. Keys: an HS256 secret, a PEM public key (RS256/ES256) or a JWKS
file (the token's `kid` picks the key). Error messages never contain the token.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

import jwt

from api import dev_auth
from api.application.caller import ROLES, Caller, NotAuthenticated
from infrastructure.settings import Settings

log = logging.getLogger(__name__)

_ASYMMETRIC = ["RS256", "ES256"]
_ACTOR_PREFIX = "user:"  # a token's `sub` is recorded as the actor "user:<sub>"
_MAX_NAME = 200  # characters in a tenant or an actor (domain.log.EventMetadata)
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class TokenVerifier:
    keys: dict[str | None, Any]  # kid -> key; None: the one key for tokens without a kid
    algorithms: list[str]
    audience: str | None
    issuer: str | None
    leeway_s: float
    max_lifetime_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        keys: dict[str | None, Any]
        if settings.jwt_jwks_file:
            jwks = jwt.PyJWKSet.from_json(Path(settings.jwt_jwks_file).read_text())
            keys = {k.key_id: k.key for k in jwks.keys}
            if len(jwks.keys) == 1:
                keys[None] = jwks.keys[0].key
            default = _ASYMMETRIC
        elif settings.jwt_public_key:
            keys, default = {None: _pem(settings.jwt_public_key)}, _ASYMMETRIC
        else:
            keys, default = {None: dev_auth.signing_secret(settings)}, ["HS256"]
        algorithms = settings.jwt_algorithms or default
        if any(a.lower() == "none" for a in algorithms):
            raise ValueError("jwt_algorithms must not include 'none'")
        return cls(keys, algorithms, settings.jwt_audience, settings.jwt_issuer,
                   settings.jwt_leeway_s, settings.max_token_lifetime_s)  # fmt: skip

    def verify(self, token: str) -> Caller:
        """The caller a valid token names; `NotAuthenticated` for anything else."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self.keys.get(kid) if kid in self.keys else self.keys.get(None)
            if key is None:
                raise NotAuthenticated("token signed with an unknown key")
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={
                    "require": ["exp", "sub"]
                    + (["aud"] if self.audience else [])
                    + (["iss"] if self.issuer else []),
                    # An api configured without an audience accepts tokens that carry one.
                    "verify_aud": self.audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("token expired") from None
        except jwt.PyJWTError as error:
            # PyJWT's messages name the failed check, never the token itself.
            raise NotAuthenticated(f"invalid token: {error}") from None
        caller = _caller(claims)
        _check_lifetime(claims, self.max_lifetime_s)
        return caller


_TIME_CLAIMS = ("exp", "iat", "nbf")


def _check_lifetime(claims: dict[str, Any], max_lifetime_s: float) -> None:
    """Refuse time claims that are not JSON numbers (PyJWT reads "exp": "9999999999" as a number)
    and a token meant to live longer than `max_lifetime_s`: measured from `iat` when it has one,
    else from now."""
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise NotAuthenticated(f"invalid token: {name} must be a number")
    start = claims.get("iat", time.time())
    if claims["exp"] - start > max_lifetime_s:
        raise NotAuthenticated(f"token lifetime exceeds {max_lifetime_s:g} s")


def _caller(claims: dict[str, Any]) -> Caller:
    tenant, roles, sub = claims.get("tenant"), claims.get("roles"), claims.get("sub")
    if not _storable_name(tenant, _MAX_NAME):
        raise NotAuthenticated("invalid token: no usable tenant claim")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise NotAuthenticated("invalid token: roles must be a list of strings")
    if not _storable_name(sub, _MAX_NAME - len(_ACTOR_PREFIX)):
        raise NotAuthenticated("invalid token: no usable sub claim")
    try:
        expires = datetime.fromtimestamp(float(claims["exp"]), UTC)
    except (OverflowError, ValueError, OSError):  # signed, but past what a datetime can hold
        raise NotAuthenticated("invalid token: exp is out of range") from None
    return Caller(tenant, _ACTOR_PREFIX + sub, frozenset(roles) & ROLES, expires_at=expires)


def _storable_name(value: Any, max_length: int) -> TypeGuard[str]:
    """A claim the log can record as a tenant or an actor: a non-empty string within the length
    the events' metadata allows, without U+0000 or lone surrogates (PostgreSQL refuses both)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= max_length
        and "\x00" not in value
        and not _SURROGATE.search(value)
    )


def _pem(value: str) -> str:
    """The PEM text itself, or the path of a file holding it."""
    return value if "-----BEGIN" in value else Path(value).read_text()


def describe(settings: Settings) -> str:
    """What the api checks, for the start-up log line (no key material)."""
    if settings.jwt_jwks_file:
        source = f"JWKS {settings.jwt_jwks_file}"
    elif settings.jwt_public_key:
        source = "public key"
    elif settings.jwt_secret:
        source = "shared secret"
    else:
        source = f"developer secret {settings.dev_jwt_secret_file}"
    extra = {"aud": settings.jwt_audience, "iss": settings.jwt_issuer}
    return f"JWT auth with {source}, checks {json.dumps({k: v for k, v in extra.items() if v})}"
