"""Ids in paths and numbers in queries are read by one rule in the gateway: anything but
ASCII digits is a 400 naming the parameter, never a 500, and a number too large for its
protobuf field is an id that finds nothing or a count cut to the field's limit.
"""

from __future__ import annotations

import pytest

from server.gateway.http import INT64_MAX, id_too_large
from tests.support import Stack


def _refusal(raw: str) -> str:
    """What the gateway says of a bad path id: digits past int64 are too large, the rest
    are not positive numbers."""
    if raw.isascii() and raw.isdigit() and int(raw) > INT64_MAX:
        return id_too_large(raw)
    return f"{raw!r} is not a positive number"

BAD_IDS = ["abc", "0", "-1", "1.5", "²", "١٢", "99999999999999999999", "9223372036854775808"]
ID_PATHS = ["/api/v1/contact/{}", "/api/v1/fields/{}", "/api/v1/messages/{}",
            "/api/v1/events/{}", "/api/v1/workflows/{}", "/api/v1/workflow-runs/{}",
            "/api/v1/workflows/{}/runs", "/api/v1/workflow-runs/{}/messages"]


@pytest.mark.parametrize("path", ID_PATHS)
@pytest.mark.parametrize("raw", BAD_IDS)
async def test_a_bad_path_id_is_a_400_naming_it(stack: Stack, path: str, raw: str) -> None:
    """Every route with an id in its path answers 400 naming id: "... is not a positive
    number", or, for digits past int64, "... is past the largest id, 9223372036854775807"."""
    r = await stack.http.get(path.format(raw), headers=stack.auth())
    assert r.status_code == 400, r.text
    (violation,) = r.json()["violations"]
    assert violation == {"field": "id", "message": _refusal(raw)}


@pytest.mark.parametrize("path", ["/api/v1/messages/{}", "/api/v1/events/{}",
                                  "/api/v1/workflows/{}", "/api/v1/contact/{}",
                                  "/api/v1/fields/{}", "/api/v1/workflow-runs/{}"])
async def test_the_largest_id_is_looked_up(stack: Stack, path: str) -> None:
    """An id at the int64 limit reaches the server, which does not know it: 404 (on
    PostgreSQL too, where some tables keep 32-bit ids)."""
    r = await stack.http.get(path.format(2**63 - 1), headers=stack.auth())
    assert r.status_code == 404, r.text


@pytest.mark.parametrize("url,name", [
    ("/api/v1/events?pageSize=ten", "pageSize"), ("/api/v1/events?pageSize=²", "pageSize"),
    ("/api/v1/contacts?maxrows=-5", "maxrows"), ("/api/v1/contacts?startindex=1e3", "startindex"),
    ("/api/v1/workflow-runs?contactId=x", "contactId"),
    ("/api/v1/workflow-messages?beforeId=%EF%BC%91", "beforeId"),
    ("/api/v1/orders?contactId=%C2%B2", "contactId"), ("/api/v1/orders?maxrows=%C2%B2", "maxrows"),
    ("/api/v1/orders?startindex=one", "startindex")])
async def test_a_bad_query_number_is_a_400_naming_it(stack: Stack, url: str, name: str) -> None:
    """A query number that is not ASCII digits answers 400 naming that parameter."""
    r = await stack.http.get(url, headers=stack.auth())
    assert r.status_code == 400, r.text
    assert r.json()["violations"] == [{"field": name, "message": "must be a number"}]


async def test_a_huge_page_size_is_the_servers_range_error(stack: Stack) -> None:
    """pageSize past int32 reaches the server as its largest value: the server's 400."""
    r = await stack.http.get("/api/v1/events?pageSize=99999999999", headers=stack.auth())
    assert r.status_code == 400, r.text
    assert [v["field"] for v in r.json()["violations"]] == ["pageSize"]


async def test_a_bad_message_id_to_send_is_a_400(stack: Stack) -> None:
    """POST /api/v1/message/{id}/smartsend reads its id by the same rule."""
    for raw in ("²", "0", "99999999999999999999"):
        r = await stack.http.post(f"/api/v1/message/{raw}/smartsend", headers=stack.auth(),
                                  json={"recipients": []})
        assert r.status_code == 400, r.text
        assert r.json()["violations"] == [{"field": "id", "message": _refusal(raw)}]


async def test_huge_paging_is_the_range_error(stack: Stack) -> None:
    """startindex and maxrows past int32 are cut to it and refused by their own ranges."""
    for path in ("/api/v1/orders", "/api/v1/contacts"):
        r = await stack.http.get(f"{path}?maxrows=99999999999", headers=stack.auth())
        assert r.status_code == 400, r.text
        assert [v["field"] for v in r.json()["violations"]] == ["maxrows"]


@pytest.mark.parametrize("url,key", [
    ("/api/v1/contacts?startindex=99999999999&email=nobody@example.com", None),
    ("/api/v1/workflow-runs?contactId=99999999999999999999999", "runs"),
    ("/api/v1/workflow-messages?workflowId=99999999999999999999999", "messages"),
    ("/api/v1/workflow-runs?workflowId=9223372036854775807", "runs")])
async def test_huge_query_numbers_find_nothing(stack: Stack, url: str, key: str | None) -> None:
    """A count or id past its field's limit is cut to it, and answers an empty list."""
    r = await stack.http.get(url, headers=stack.auth())
    assert r.status_code == 200, r.text
    assert (r.json() if key is None else r.json()[key]) == []
