"""Tokens for tests: signed with the test secret every test app is configured with."""

from __future__ import annotations

import time
from typing import Any

import jwt

TEST_SECRET = "test-secret-for-scamtrail-tests-only-0123456789"
EVERY_ROLE = ("submitter", "analyst", "admin")


def token(
    tenant: str = "public",
    roles: tuple[str, ...] | list[str] = EVERY_ROLE,
    sub: str = "tester",
    *,
    ttl_s: float = 3600,
    secret: str = TEST_SECRET,
    **claims: Any,
) -> str:
    now = int(time.time())
    body = {"sub": sub, "tenant": tenant, "roles": list(roles), "iat": now,
            "exp": now + int(ttl_s), **claims}  # fmt: skip
    return jwt.encode(body, secret, algorithm="HS256")


def bearer(value: str | None = None, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {value or token(**kwargs)}"}
