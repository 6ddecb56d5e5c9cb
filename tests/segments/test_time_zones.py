"""Calendar periods in the account's time zone (issue 13): the account's zone is set over
HTTP, a definition naming no zone takes it when saved, and "today" / "thisWeek" are then
that zone's local day and week for membership."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from server.accounts import account_time_zone, set_time_zone
from server.segments.definition import parse_definition
from server.segments.loop import recount_step
from server.segments.membership import apply
from server.segments.store import create_segment, get_segment
from tests.segments.storage import Db, open_db
from tests.support import Stack

# 09:00 UTC on Wednesday 2 December is 23:00 in Kiritimati (UTC+14), still the 2nd there;
# its local day began at 10:00 UTC on the 1st, and its week at 10:00 UTC on Sunday the 29th.
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
KIRITIMATI = "Pacific/Kiritimati"


async def test_the_account_time_zone_over_http(stack: Stack) -> None:
    """PATCH sets the zone (GET shows it); a bad zone or member is a 400 naming it; a
    segment saved without timeZone takes the account's and moves with it (a new version),
    one naming its own keeps it."""
    auth = stack.auth()
    r = await stack.http.get("/api/v1/account/settings", headers=auth)
    assert r.status_code == 200 and r.json()["timeZone"] == "UTC", r.text
    r = await stack.http.patch("/api/v1/account/settings", headers=auth,
                               json={"timeZone": "Europe/Kyiv"})
    assert r.status_code == 200 and r.json()["timeZone"] == "Europe/Kyiv", r.text
    assert (await stack.http.get("/api/v1/account/settings", headers=auth)).json()[
        "timeZone"] == "Europe/Kyiv"
    for body, field in (({"timeZone": "Mars/Olympus"}, "timeZone"),
                        ({"timeZone": 3}, "timeZone"), ({"zone": "UTC"}, "zone")):
        r = await stack.http.patch("/api/v1/account/settings", headers=auth, json=body)
        assert r.status_code == 400, r.text
        assert [v["field"] for v in r.json()["violations"]] == [field]
    conditions = {"event": {"eventTypeKey": "visit", "within": "today"}}
    plain = await stack.http.post("/api/v1/segments", headers=auth,
                                  json={"name": "today", "conditions": conditions})
    own = await stack.http.post("/api/v1/segments", headers=auth, json={
        "name": "today in NY", "conditions": conditions, "timeZone": "America/New_York"})
    assert plain.status_code == 200 and own.status_code == 200
    r = await stack.http.patch("/api/v1/account/settings", headers=auth, json={"timeZone": "UTC"})
    assert r.json()["timeZone"] == "UTC"
    got = await stack.http.get(f"/api/v1/segments/{plain.json()['id']}", headers=auth)
    assert got.json()["timeZone"] == "UTC" and got.json()["version"] == 2
    assert "followsAccountZone" not in got.json()["conditions"]
    got = await stack.http.get(f"/api/v1/segments/{own.json()['id']}", headers=auth)
    assert got.json()["timeZone"] == "America/New_York" and got.json()["version"] == 1


@pytest.fixture(scope="module")
async def db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Db]:
    opened = await open_db(tmp_path_factory.mktemp("segments-tz"))
    yield opened
    await opened.close()


async def _segment_in_account_zone(db: Db, within: str) -> int:
    async with db.engine.begin() as conn:
        tz = await account_time_zone(conn, account_id=db.account_id)
        definition = parse_definition({"name": within, "conditions": {"event": {
            "eventTypeKey": "visit", "within": within}}}, default_zone=tz)
        return await create_segment(conn, account_id=db.account_id, definition=definition)


async def test_today_and_this_week_are_the_accounts_local_ones(db: Db) -> None:
    """With the account in Kiritimati: an event at 11:00 UTC on the 1st is "today" there
    (not in UTC), one at 09:00 UTC on the 1st is not; Sunday 29th 12:00 UTC is "this
    week" there (Monday 30th local), Sunday 09:00 UTC is not; a UTC account differs."""
    await set_time_zone(db.engine, account_id=db.account_id, time_zone=KIRITIMATI)
    today = await _segment_in_account_zone(db, "today")
    week = await _segment_in_account_zone(db, "thisWeek")
    cases = [(datetime(2026, 12, 1, 11, 0, tzinfo=UTC), True, True),
             (datetime(2026, 12, 1, 9, 0, tzinfo=UTC), False, True),
             (datetime(2026, 11, 29, 12, 0, tzinfo=UTC), False, True),
             (datetime(2026, 11, 29, 9, 0, tzinfo=UTC), False, False)]
    for at, in_today, in_week in cases:
        contact = await db.contact(email=f"tz{int(at.timestamp())}@example.com")
        event = await db.event("visit", contact_id=contact, at=at)
        async with db.engine.begin() as conn:
            await apply(conn, db.account_id, [event], NOW)
        assert (contact in await db.members(today)) is in_today, at
        assert (contact in await db.members(week)) is in_week, at
    # The same first event in a UTC account: not "today" (the UTC day began at 00:00).
    await set_time_zone(db.engine, account_id=db.account_id, time_zone="UTC")
    utc_today = await _segment_in_account_zone(db, "today")
    contact = await db.contact(email="tz-utc@example.com")
    event = await db.event("visit", contact_id=contact, at=cases[0][0])
    async with db.engine.begin() as conn:
        await apply(conn, db.account_id, [event], NOW)
    assert contact not in await db.members(utc_today)


async def test_a_zone_change_recounts_the_segments_that_follow_it(db: Db) -> None:
    """An account moving from Kiritimati to UTC: its "today" segment saved without a zone
    is recounted in UTC (the event at 11:00 UTC on the 1st is no longer today), the same
    segment naming Kiritimati keeps its member, and a sliding-window one keeps its version's
    members without a recount."""
    await set_time_zone(db.engine, account_id=db.account_id, time_zone=KIRITIMATI)
    follows = await _segment_in_account_zone(db, "today")
    sliding = await _segment_in_account_zone(db, "P2D")
    own = await db.segment({"name": "own", "timeZone": KIRITIMATI, "conditions": {
        "event": {"eventTypeKey": "visit", "within": "today"}}})
    while await recount_step(db.engine, now=NOW):
        pass
    contact = await db.contact(email="tz-move@example.com")
    event = await db.event("visit", contact_id=contact, at=datetime(2026, 12, 1, 11, 0,
                                                                    tzinfo=UTC))
    async with db.engine.begin() as conn:
        await apply(conn, db.account_id, [event], NOW)
    for sid in (follows, sliding, own):
        assert contact in await db.members(sid)
    await set_time_zone(db.engine, account_id=db.account_id, time_zone="UTC")
    async with db.engine.connect() as conn:
        moved = await get_segment(conn, account_id=db.account_id, segment_id=follows)
        kept = await get_segment(conn, account_id=db.account_id, segment_id=own)
        window = await get_segment(conn, account_id=db.account_id, segment_id=sliding)
    assert moved is not None and kept is not None and window is not None
    assert (moved.time_zone, moved.version, moved.status) == ("UTC", 2, "building")
    assert (kept.time_zone, kept.version, kept.status) == (KIRITIMATI, 1, "ready")
    assert (window.time_zone, window.status) == ("UTC", "ready")
    while await recount_step(db.engine, now=NOW):
        pass
    assert contact not in await db.members(follows)
    assert contact in await db.members(own) and contact in await db.members(sliding)
