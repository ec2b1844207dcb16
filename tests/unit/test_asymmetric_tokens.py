"""RS256 and ES256 tokens, verified with a PEM public key or a JWKS file chosen by `kid`:
an issuer's own keys, not a shared secret."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.auth import TokenVerifier
from api.caller import NotAuthenticated
from infrastructure.settings import load_settings

pytestmark = pytest.mark.unit


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "ana", "tenant": "bank-7", "roles": ["analyst"], "exp": now + 60, **extra}


def public_pem(key: Any) -> str:
    pem: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(("key", "algorithm"), [(RSA, "RS256"), (EC, "ES256")])
def test_a_token_signed_by_the_issuer_is_accepted_with_its_public_key(
    key: Any, algorithm: str
) -> None:
    verifier = TokenVerifier.from_settings(load_settings(jwt_public_key=public_pem(key)))
    caller = verifier.verify(jwt.encode(claims(), key, algorithm=algorithm))
    assert (caller.tenant, caller.roles) == ("bank-7", frozenset({"analyst"}))

    forged = jwt.encode(claims(), OTHER_RSA, algorithm="RS256")
    with pytest.raises(NotAuthenticated):
        verifier.verify(forged)
    # The public key is no HMAC secret: the classic algorithm-confusion forgery fails.
    with pytest.raises(NotAuthenticated):
        verifier.verify(jwt.encode(claims(), "not-the-key-" * 4, algorithm="HS256"))


def test_a_jwks_file_picks_the_key_by_kid(tmp_path: Path) -> None:
    keys = []
    for kid, key in (("rsa-1", RSA), ("ec-1", EC)):
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[
            "RS256" if kid.startswith("rsa") else "ES256"
        ].to_jwk(key.public_key()))  # fmt: skip
        keys.append({**jwk, "kid": kid})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": keys}))
    verifier = TokenVerifier.from_settings(load_settings(jwt_jwks_file=str(jwks)))

    for kid, key, algorithm in (("rsa-1", RSA, "RS256"), ("ec-1", EC, "ES256")):
        token = jwt.encode(claims(), key, algorithm=algorithm, headers={"kid": kid})
        assert verifier.verify(token).tenant == "bank-7"
    unknown = jwt.encode(claims(), OTHER_RSA, algorithm="RS256", headers={"kid": "rsa-9"})
    with pytest.raises(NotAuthenticated, match="unknown key"):
        verifier.verify(unknown)
    wrong = jwt.encode(claims(), OTHER_RSA, algorithm="RS256", headers={"kid": "rsa-1"})
    with pytest.raises(NotAuthenticated):
        verifier.verify(wrong)
