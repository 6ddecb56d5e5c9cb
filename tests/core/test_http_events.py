"""The HTTP gateway's event endpoints, over real HTTP to a real gRPC server and database."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest

from tests.core.seed import SEED_BODIES
from tests.support import Stack, basic


async def read_back(stack: Stack, event_id: str) -> dict[str, Any]:
    r = await stack.http.get(f"/api/v1/events/{event_id}", headers=stack.auth())
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(SEED_BODIES))
async def test_seed_body_accepted_and_read_back_unchanged(stack: Stack, name: str) -> None:
    """Every seed example is accepted with 200, empty body, X-Event-Id, and reads back as sent."""
    body = SEED_BODIES[name]
    r = await stack.post_event(body)
    assert r.status_code == 200, r.text
    assert r.content == b""
    stored = await read_back(stack, r.headers["X-Event-Id"])
    assert stored["eventTypeKey"] == body["eventTypeKey"]
    assert stored["keyValue"] == body["keyValue"]
    assert stored["params"] == body["params"]
    assert stored["receivedAt"].endswith("Z")


async def test_v1_trailing_slash_and_string_values_kept(stack: Stack) -> None:
    """/api/v1/event/ accepts the old form, keeps escaped-JSON strings as sent and reads a
    boolean as v1 does, as its text (docs/compatibility.md)."""
    nested = json.dumps({"array": [{"name": "x", "price": "1"}]})
    body = {"eventTypeKey": "v1_cart", "keyValue": "k1",
            "params": [{"name": "items", "value": nested}, {"name": "flag", "value": True}]}
    r = await stack.post_event(body, path="/api/v1/event/")
    assert r.status_code == 200, r.text
    stored = await read_back(stack, r.headers["X-Event-Id"])
    assert stored["params"] == [body["params"][0], {"name": "flag", "value": "true"}]
    assert isinstance(stored["params"][0]["value"], str)


async def test_every_json_type_is_stored_losslessly(stack: Stack) -> None:
    """Strings (Unicode too), integers, decimals, booleans, null, objects and lists survive."""
    values: list[Any] = ["Привіт 👋 中文", 0, -42, 2**53 - 1, 3.25, 1e-7, True, False, None,
                         {"a": {"b": [1, "2", None]}}, [], {}, ["x", 1.5, {"k": [True]}], ""]
    body = {"eventTypeKey": "types", "keyValue": "kv",
            "params": [{"name": f"p{i}", "value": v} for i, v in enumerate(values)]}
    r = await stack.post_event(body)
    assert r.status_code == 200, r.text
    stored = await read_back(stack, r.headers["X-Event-Id"])
    assert [p["value"] for p in stored["params"]] == values


async def test_key_value_derived_in_documented_priority(stack: Stack) -> None:
    """Without keyValue, contactId wins over externalCustomerId over email over phone."""
    body = {"eventTypeKey": "derive", "params": [
        {"name": "Phone", "value": "+380501234567"}, {"name": "EmailAddress", "value": "a@b.c"},
        {"name": "externalCustomerId", "value": "EXT-1"}, {"name": "Contact_id", "value": 77}]}
    r = await stack.post_event(body)
    assert r.status_code == 200, r.text
    assert (await read_back(stack, r.headers["X-Event-Id"]))["keyValue"] == "77"
    body["params"] = body["params"][:3]
    r = await stack.post_event(body)
    assert (await read_back(stack, r.headers["X-Event-Id"]))["keyValue"] == "EXT-1"
    body["params"] = body["params"][:2]
    r = await stack.post_event(body)
    assert (await read_back(stack, r.headers["X-Event-Id"]))["keyValue"] == "a@b.c"


@pytest.mark.parametrize("blank", ["", "   ", "\u00a0\u2003", "null", "NULL", None])
async def test_blank_external_customer_id_is_ignored(stack: Stack, blank: Any) -> None:
    """externalCustomerId "", blanks, "null" or null does not become the key; email does."""
    body = {"eventTypeKey": "ext_blank", "params": [
        {"name": "externalCustomerId", "value": blank}, {"name": "email", "value": "e@x.org"}]}
    r = await stack.post_event(body)
    assert r.status_code == 200, r.text
    assert (await read_back(stack, r.headers["X-Event-Id"]))["keyValue"] == "e@x.org"


async def test_concurrent_first_events_create_one_event_type(stack: Stack) -> None:
    """Fifty simultaneous first events of a new type create that type exactly once."""
    body = {"eventTypeKey": "brand_new_type", "keyValue": "k", "params": []}
    replies = await asyncio.gather(*(stack.post_event(body) for _ in range(50)))
    assert {r.status_code for r in replies} == {200}
    r = await stack.http.get("/api/v1/event-types", headers=stack.auth())
    matching = [t for t in r.json() if t["key"] == "brand_new_type"]
    assert len(matching) == 1 and matching[0]["eventCount"] == 50


async def test_history_filters_and_pages_newest_first(stack: Stack) -> None:
    """ListEvents filters by type and key value and pages newest first without repeats."""
    ids = []
    for i in range(5):
        r = await stack.post_event({"eventTypeKey": "paged", "keyValue": f"pk{i % 2}", "params": []})
        ids.append(int(r.headers["X-Event-Id"]))
    seen: list[int] = []
    token = None
    while True:
        params = {"eventTypeKey": "paged", "pageSize": "2"}
        if token:
            params["pageToken"] = token
        r = await stack.http.get("/api/v1/events", params=params, headers=stack.auth())
        assert r.status_code == 200, r.text
        seen += [e["id"] for e in r.json()["events"]]
        token = r.json()["nextPageToken"]
        if not token:
            break
    assert seen == sorted(ids, reverse=True)
    r = await stack.http.get("/api/v1/events", params={"eventTypeKey": "paged", "keyValue": "pk1"},
                             headers=stack.auth())
    assert [e["id"] for e in r.json()["events"]] == [ids[3], ids[1]]


async def test_accounts_never_see_each_other(stack: Stack) -> None:
    """An event of one account is invisible to another account's key, by id and in lists."""
    r = await stack.post_event({"eventTypeKey": "private_type", "keyValue": "p", "params": []})
    event_id = r.headers["X-Event-Id"]
    other = stack.auth(stack.other_key)
    assert (await stack.http.get(f"/api/v1/events/{event_id}", headers=other)).status_code == 404
    listed = (await stack.http.get("/api/v1/events", headers=other)).json()["events"]
    assert all(e["id"] != int(event_id) for e in listed)
    types = (await stack.http.get("/api/v1/event-types", headers=other)).json()
    assert "private_type" not in {t["key"] for t in types}


async def test_x_api_key_and_any_user_name_authenticate(stack: Stack) -> None:
    """Basic auth with any (or empty) user name, or the x-api-key header, is accepted."""
    body = {"eventTypeKey": "auth_ok", "keyValue": "k", "params": []}
    for headers in ({"Authorization": basic(stack.api_key, "")},
                    {"Authorization": basic(stack.api_key, "user")},
                    {"x-api-key": stack.api_key}):
        r = await stack.http.post("/api/v2/event", json=body, headers=headers)
        assert r.status_code == 200, (headers, r.text)


async def test_health_endpoint(stack: Stack) -> None:
    """/healthz answers ok while the gRPC server is serving."""
    r = await stack.http.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


async def test_seed_bodies_do_not_share_state(stack: Stack) -> None:
    """Posting the same body twice stores two events (no message id means no de-duplication)."""
    body = copy.deepcopy(SEED_BODIES["password_recovery"])
    a = await stack.post_event(body)
    b = await stack.post_event(body)
    assert a.headers["X-Event-Id"] != b.headers["X-Event-Id"]


async def test_concurrent_posts_each_get_their_own_answer(stack: Stack) -> None:
    """Concurrent requests share calls to the server, yet each gets its own id or its own
    violations: valid ones 200 with their event, invalid ones 400 naming their field."""
    bodies = []
    for i in range(40):
        if i % 5 == 0:
            bodies.append({"eventTypeKey": f"bad|{i}", "keyValue": f"c{i}", "params": []})
        else:
            bodies.append({"eventTypeKey": "coalesced", "keyValue": f"c{i}", "params": []})
    replies = await asyncio.gather(*(stack.post_event(b) for b in bodies))
    ids = []
    for i, r in enumerate(replies):
        if i % 5 == 0:
            assert r.status_code == 400, r.text
            assert r.json()["violations"][0]["field"] == "eventTypeKey"
            assert "forbidden character(s) |" in r.json()["error"]
        else:
            assert r.status_code == 200, r.text
            ids.append(r.headers["X-Event-Id"])
            assert (await read_back(stack, r.headers["X-Event-Id"]))["keyValue"] == f"c{i}"
    assert len(set(ids)) == 32


def test_coalesced_calls_stay_within_the_servers_message_limit() -> None:
    """The gateway cuts concurrent events into GenerateEvents calls of at most 500 events
    and at most MAX_BYTES_PER_CALL bytes (gRPC refuses a longer message whole)."""
    from server.gateway.coalesce import EVENT_FRAMING, MAX_BYTES_PER_CALL, batch_ends

    sizes = [19_000] * 1000
    ends = batch_ends(sizes)
    starts = [0, *ends[:-1]]
    assert ends[-1] == 1000 and len(ends) > 2
    for start, end in zip(starts, ends):
        assert 0 < end - start <= 500
        assert sum(n + EVENT_FRAMING for n in sizes[start:end]) <= MAX_BYTES_PER_CALL
    # Each call is as full as the limit allows: one event more would pass it.
    for start, end in zip(starts, ends[:-1]):
        assert sum(n + EVENT_FRAMING for n in sizes[start:end + 1]) > MAX_BYTES_PER_CALL
    assert batch_ends([10] * 1200) == [500, 1000, 1200]
    # One event over the limit alone travels by itself (and is refused as too large).
    assert batch_ends([10, MAX_BYTES_PER_CALL + 1, 10]) == [1, 2, 3]
    assert batch_ends([]) == []
