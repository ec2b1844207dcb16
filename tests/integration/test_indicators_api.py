"""POST /indicators and GET /indicators through the app, its lifespan run as in production."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def client(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """The in-process api of tests/conftest.py, as every test here calls it."""
    return api


async def test_an_added_phone_is_found_however_it_is_written(client: httpx.AsyncClient) -> None:
    new = {"kind": "phone", "value": "+1 (800) 555-0199", "category": "tech_support"}

    first = await client.post("/indicators", json=new)
    again = await client.post("/indicators", json={**new, "report_count": 4, "source": "ftc"})
    found = await client.get("/indicators", params={"kind": "phone", "value": "800-555-0199"})

    assert first.status_code == 201, first.text
    assert first.json()["value"] == "+18005550199"
    assert (first.json()["report_count"], first.json()["source"]) == (1, "analyst")
    assert again.status_code == 201 and again.json()["report_count"] == 5
    assert again.json()["id"] == first.json()["id"]
    assert found.status_code == 200
    (match,) = found.json()["matches"]
    assert (match["value"], match["category"], match["report_count"]) == (
        "+18005550199",
        "tech_support",
        5,
    )


async def test_a_domain_is_found_from_a_subdomain(client: httpx.AsyncClient) -> None:
    added = await client.post(
        "/indicators",
        json={"kind": "domain", "value": "WWW.E-ZPass-Toll.VIP", "category": "toll_road"},
    )
    found = await client.get(
        "/indicators", params={"kind": "domain", "value": "pay.e-zpass-toll.vip"}
    )
    unknown = await client.get("/indicators", params={"kind": "domain", "value": "example.org"})

    assert added.status_code == 201 and added.json()["value"] == "e-zpass-toll.vip"
    assert [m["value"] for m in found.json()["matches"]] == ["e-zpass-toll.vip"]
    assert unknown.status_code == 200 and unknown.json() == {"matches": []}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"kind": "phone", "value": "call me maybe", "category": "romance"}, "not a phone number"),
        ({"kind": "domain", "value": "localhost", "category": "romance"}, "not a domain name"),
        ({"kind": "url", "value": "paypa1.com/login", "category": "romance"}, "not an http(s) URL"),
        ({"kind": "fax", "value": "123", "category": "romance"}, "kind"),
        ({"kind": "email", "value": "a@b.com", "category": "Not A Category"}, "category"),
        ({"kind": "email", "value": "a@b.com", "category": "romance", "report_count": 0}, "1"),
        ({"kind": "email", "value": "", "category": "romance"}, "value"),
    ],
)
async def test_an_indicator_that_is_not_one_is_refused(
    client: httpx.AsyncClient, body: dict[str, object], says: str
) -> None:
    response = await client.post("/indicators", json=body)

    assert response.status_code == 422
    assert says in response.text
    lookup = await client.get("/indicators", params={"kind": "email", "value": "a@b.com"})
    assert lookup.json() == {"matches": []}  # nothing was stored


async def test_looking_up_a_value_that_is_not_one_is_refused(client: httpx.AsyncClient) -> None:
    garbage = await client.get("/indicators", params={"kind": "phone", "value": "garbage"})
    bad_kind = await client.get("/indicators", params={"kind": "fax", "value": "123"})

    assert garbage.status_code == 422
    assert "not a phone number: 'garbage'" in garbage.json()["detail"]
    assert bad_kind.status_code == 422
