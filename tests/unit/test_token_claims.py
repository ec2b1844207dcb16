"""A validly signed token whose claims the api cannot use is refused (401), never a server error:
an `exp` past the last representable date, a tenant or sub the log cannot record."""

from __future__ import annotations

import pytest

from api.auth import TokenVerifier
from api.caller import NotAuthenticated
from infrastructure.settings import load_settings
from tests.auth import TEST_SECRET, token

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def verifier() -> TokenVerifier:
    return TokenVerifier.from_settings(load_settings(jwt_secret=TEST_SECRET))


def test_a_far_but_valid_expiry_is_refused_as_too_long_a_lifetime(
    verifier: TokenVerifier,
) -> None:
    with pytest.raises(NotAuthenticated, match="lifetime"):
        verifier.verify(token(exp=253402300000))  # 9999-12-31T23:46:40Z


@pytest.mark.parametrize("exp", [10**20, 10**400, 1e300])
def test_an_expiry_beyond_any_date_is_refused(verifier: TokenVerifier, exp: float) -> None:
    with pytest.raises(NotAuthenticated, match="exp"):
        verifier.verify(token(exp=exp))


@pytest.mark.parametrize(
    ("tenant", "sub"),
    [
        ("bank\x00", "ana"),
        ("bank\ud800", "ana"),
        ("t" * 201, "ana"),
        ("bank", "ana\x00"),
        ("bank", "ana\udc00"),
        ("bank", "s" * 196),  # recorded as "user:<sub>": over the 200 characters an actor holds
    ],
)
def test_a_tenant_or_sub_the_log_cannot_record_is_refused(
    verifier: TokenVerifier, tenant: str, sub: str
) -> None:
    with pytest.raises(NotAuthenticated):
        verifier.verify(token(tenant=tenant, sub=sub))


def test_the_longest_names_the_log_records_are_accepted(verifier: TokenVerifier) -> None:
    caller = verifier.verify(token(tenant="t" * 200, sub="s" * 195))
    assert (len(caller.tenant), len(caller.actor)) == (200, 200)
