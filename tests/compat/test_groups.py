"""eSputnik's group reads as clients call them: ``GET /api/v1/groups`` to find a group by
name (static groups a bulk import or subscription filled, and segments), then
``GET /api/v1/group/{id}/contacts?startindex=&maxrows=`` read page by page as contacts."""

from __future__ import annotations

import secrets
from typing import Any

import pydantic

from tests.compat.conftest import dumps, replay
from tests.compat.helpers import eventually, unique_email
from tests.compat.test_contacts import EsputnikContact
from tests.support import Stack


class GroupModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    id: int
    name: str
    type: str


async def groups(s: Stack, key: str | None = None, path: str = "/api/v1/groups"
                 ) -> list[GroupModel]:
    r = await replay(s, "GET", path, content_type=None, key=key)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return [GroupModel.model_validate(g) for g in r.json()]


async def group_id_by_name(s: Stack, name: str, key: str | None = None) -> int:
    """The TypeScript integration's groupIdByName: the list, then find by name."""
    return next((g.id for g in await groups(s, key) if g.name == name), 0)


async def members_by_pages(s: Stack, gid: int, maxrows: int, key: str | None = None
                           ) -> tuple[list[EsputnikContact], set[str]]:
    """Its groupMembersById: startindex from 1 by maxrows until a short page."""
    out: list[EsputnikContact] = []
    totals = set()
    start = 1
    while True:
        r = await replay(s, "GET", f"/api/v1/group/{gid}/contacts?startindex={start}"
                         f"&maxrows={maxrows}", content_type=None, key=key)
        assert r.status_code == 200, r.text
        totals.add(r.headers["TotalCount"])
        page = [EsputnikContact.model_validate(c) for c in r.json()]
        out += page
        if len(page) < maxrows:
            return out, totals
        start += maxrows


async def test_a_bulk_filled_group_is_found_by_name_and_read_in_pages(compat: Stack) -> None:
    """Import into a new group (restoreDeleted: true, as that integration sends it), find
    it in /api/v1/groups (type Static), read its contacts two at a time: every contact, in
    eSputnik's shape with its email channel, TotalCount the group's size."""
    name = f"Leads: {secrets.token_hex(3)} (auto)"
    emails = sorted(unique_email("grp") for _ in range(3))
    body = {"contacts": [{"firstName": "Lead", "channels": [{"type": "email", "value": e}]}
                         for e in emails],
            "dedupeOn": "email", "contactFields": ["firstName", "timeZone", "address"],
            "groupNames": [name], "restoreDeleted": True}
    r = await replay(compat, "POST", "/api/v1/contacts", dumps(body))
    assert r.status_code == 200, r.text
    gid = await group_id_by_name(compat, name)
    assert gid and {g.type for g in await groups(compat) if g.id == gid} == {"Static"}
    members, totals = await members_by_pages(compat, gid, maxrows=2)
    assert totals == {"3"}
    assert sorted(c.channels[0].value for c in members) == emails
    assert [c.id for c in members] == sorted(c.id for c in members)
    assert all(name in [g.name for g in c.groups] for c in members)
    assert all(g.id == gid for c in members for g in c.groups if g.name == name)


async def test_groups_list_static_groups_and_segments_in_one_id_space(compat: Stack) -> None:
    """A subscription's group and a segment are both listed (the PHP client's
    send('v1/groups'), a trailing slash too), their ids distinct; a segment's id reads its
    members as contacts; ?full=true gives the whole record."""
    key = (await _fresh(compat))
    email = unique_email("seg")
    marker = "Seg" + "".join(secrets.choice("abcdefghijklmnop") for _ in range(8))
    r = await replay(compat, "POST", "/api/v1/contact/subscribe", dumps(
        {"contact": {"firstName": marker, "channels": [{"type": "email", "value": email}]},
         "groups": ["Newsletter"]}), key=key)
    assert r.status_code == 200, r.text
    contact_id = r.json()["id"]
    r = await replay(compat, "POST", "/api/v1/segments", dumps(
        {"name": "By name", "conditions": {"contact": {"field": "firstName", "op": "eq",
                                                       "value": marker}}}), key=key)
    assert r.status_code == 200, r.text
    segment_id = r.json()["id"]
    listed = await groups(compat, key, "/api/v1/groups/")
    assert {(g.name, g.type) for g in listed} == {("Newsletter", "Static"), ("By name", "Dynamic")}
    assert len({g.id for g in listed}) == 2
    assert segment_id in [g.id for g in listed if g.type == "Dynamic"]

    async def in_segment() -> Any:
        members, _ = await members_by_pages(compat, segment_id, maxrows=500, key=key)
        return members

    (member,) = await eventually(in_segment)
    assert member.id == contact_id and member.firstName == marker
    newsletter = next(g.id for g in listed if g.name == "Newsletter")
    (static,), _ = await members_by_pages(compat, newsletter, maxrows=1, key=key)
    assert static.id == contact_id
    full = await replay(compat, "GET", f"/api/v1/group/{newsletter}/contacts?full=true",
                        content_type=None, key=key)
    assert full.json()[0]["confirmed"] is False and "createdAt" in full.json()[0]


async def test_another_accounts_group_is_not_found_nor_listed(compat: Stack) -> None:
    """Another account's group id (static or segment) is 404 with a JSON error; its groups
    are not in the list."""
    key = await _fresh(compat)
    name = f"Private {secrets.token_hex(3)}"
    await replay(compat, "POST", "/api/v1/contacts", dumps(
        {"contacts": [{"channels": [{"type": "email", "value": unique_email()}]}],
         "groupNames": [name]}), key=key)
    gid = await group_id_by_name(compat, name, key)
    assert gid
    assert await group_id_by_name(compat, name) == 0
    r = await replay(compat, "GET", f"/api/v1/group/{gid}/contacts", content_type=None)
    assert r.status_code == 404 and "error" in r.json()


async def test_group_reads_refuse_unknown_parameters_and_bad_pages(compat: Stack) -> None:
    """An unknown parameter or a page out of range is a 400 naming it; a bad id too."""
    cases = [("/api/v1/groups?name=x", "name"),
             ("/api/v1/group/1/contacts?maxrows=501", "maxrows"),
             ("/api/v1/group/1/contacts?startindex=0", "startindex"),
             ("/api/v1/group/1/contacts?offset=5", "offset"),
             ("/api/v1/group/abc/contacts", "id")]
    for path, field in cases:
        r = await replay(compat, "GET", path, content_type=None)
        assert r.status_code == 400, (path, r.text)
        assert [v["field"] for v in r.json()["violations"]] == [field], r.json()


async def _fresh(s: Stack) -> str:
    from server.accounts import create_account

    _, key = await create_account(s.engine, name=f"groups-{secrets.token_hex(3)}")
    return key


async def test_a_group_id_beyond_the_stored_range_is_not_found(compat: Stack) -> None:
    """Ids past the 32-bit static-group range (and past 64 bits) are 404 / 400, never a
    database error (PostgreSQL's INTEGER column refused 397223521206 with a 500)."""
    for gid in (1_000_000_000 + 2**31, 397_223_521_206, 2**63 - 1):
        r = await replay(compat, "GET", f"/api/v1/group/{gid}/contacts", content_type=None)
        assert r.status_code == 404, (gid, r.text)
    r = await replay(compat, "GET", f"/api/v1/group/{2**64}/contacts", content_type=None)
    assert r.status_code == 400, r.text
