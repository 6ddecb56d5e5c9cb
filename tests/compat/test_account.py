"""Account info and version as the public clients call and read them."""

from __future__ import annotations

import pydantic

from tests.compat.conftest import replay
from tests.support import Stack


class AccountInfoModel(pydantic.BaseModel):
    """The strict shape a Python client validates (an email-typed userEmail)."""

    model_config = pydantic.ConfigDict(extra="forbid")
    userEmail: pydantic.EmailStr
    organisationName: str
    orgId: int


async def test_account_info_answers_org_id_name_and_email(compat: Stack) -> None:
    """GET /api/v1/account/info with an empty Basic user (the WordPress plugin's form)."""
    r = await replay(compat, "GET", "/api/v1/account/info", content_type=None)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["orgId"] == compat.account_id and doc["organisationName"] == "default"
    assert "@" in doc["userEmail"]


async def test_account_info_passes_a_strict_email_typed_model(compat: Stack) -> None:
    """An account with its own address validates against an EmailStr model; the other
    account sees its own id, never the first one's."""
    from server.accounts import create_account

    account_id, key = await create_account(compat.engine, name="Shop UA",
                                           email="owner@shop.example.org")
    r = await replay(compat, "GET", "/api/v1/account/info/", content_type=None, key=key,
                     user="api-user")
    assert r.status_code == 200, r.text
    info = AccountInfoModel.model_validate(r.json())
    assert info.orgId == account_id and info.organisationName == "Shop UA"
    assert info.userEmail == "owner@shop.example.org"


async def test_account_info_refuses_an_unknown_key(compat: Stack) -> None:
    """A wrong key is 401 with a JSON error, which is how plugins tell a bad key."""
    r = await replay(compat, "GET", "/api/v1/account/info", content_type=None, key="nope")
    assert r.status_code == 401
    assert "error" in r.json()


async def test_version_answers_version_and_protocol_on_v1_and_v2(compat: Stack) -> None:
    """GET /api/v1/version and /api/v2/version: {"version", "protocolVersion"} as strings."""
    for path in ("/api/v1/version", "/api/v2/version", "/api/v1/version/"):
        r = await replay(compat, "GET", path, content_type=None)
        assert r.status_code == 200, (path, r.text)
        doc = r.json()
        assert set(doc) == {"version", "protocolVersion"}
        assert isinstance(doc["version"], str) and doc["version"]
        assert doc["protocolVersion"] == "1.0"


async def test_the_key_may_come_as_x_api_key(compat: Stack) -> None:
    """Clients that send the key in an x-api-key header (no Basic) are answered the same;
    a wrong one is 401."""
    r = await compat.http.get("/api/v1/account/info", headers={"x-api-key": compat.api_key})
    assert r.status_code == 200 and r.json()["orgId"] == compat.account_id, r.text
    r = await compat.http.post("/api/v2/event", headers={"x-api-key": compat.api_key,
                                                        "Content-Type": "application/json"},
                               content=b'{"eventTypeKey":"apiKeyHeader","keyValue":"k-1"}')
    assert r.status_code == 200 and r.content == b"", r.text
    r = await compat.http.get("/api/v1/account/info", headers={"x-api-key": "wrong"})
    assert r.status_code == 401 and "error" in r.json()
