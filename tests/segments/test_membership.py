"""Membership kept current on a real database: after an event batch (``apply``), after
contact changes, when a window ends (due re-evaluation at the exact time), and by the
full recount with its progress."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from server.contacts.tables import CONTACTS
from server.segments.loop import recount_step, run_due
from server.segments.membership import apply, contacts_changed
from server.segments.store import get_segment
from server.segments.tables import SEGMENT_CHANGES, SEGMENT_DUE
from tests.segments.storage import Db, open_db

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
VIEWERS = {"name": "viewers", "conditions": {"all": [{"event": {
    "eventTypeKey": "productViewed", "count": {"op": "gte", "value": 3}, "within": "PT24H"}}]}}


@pytest.fixture(scope="module")
async def db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Db]:
    opened = await open_db(tmp_path_factory.mktemp("segments-db"))
    yield opened
    await opened.close()


async def changes(db: Db, segment_id: int) -> list[tuple[int, str, str, int | None]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(select(SEGMENT_CHANGES).where(
            SEGMENT_CHANGES.c.segment_id == segment_id).order_by(SEGMENT_CHANGES.c.id))
        return [(int(r.contact_id), r.change, r.reason, r.event_id) for r in rows]


async def due_of(db: Db, segment_id: int, contact_id: int) -> datetime | None:
    async with db.engine.connect() as conn:
        row = (await conn.execute(select(SEGMENT_DUE.c.due_at).where(
            (SEGMENT_DUE.c.segment_id == segment_id)
            & (SEGMENT_DUE.c.contact_id == contact_id)))).first()
    if row is None:
        return None
    return row.due_at if row.due_at.tzinfo else row.due_at.replace(tzinfo=UTC)


async def recount(db: Db, now: datetime) -> None:
    while await recount_step(db.engine, now=now, chunk=3):
        pass


async def test_enters_on_event_and_leaves_when_the_oldest_ages_out(db: Db) -> None:
    """3 productViewed in 24 h: enters on the third; leaves at exactly oldest + 24 h."""
    segment_id = await db.segment(VIEWERS)
    await recount(db, T0)
    contact = await db.contact(email="viewer@example.com")
    made = []
    for hours in (0, 5, 6):
        event = await db.event("productViewed", contact_id=contact, at=T0 + timedelta(hours=hours))
        made.append(event)
        async with db.engine.begin() as conn:
            await apply(conn, db.account_id, [event], T0 + timedelta(hours=hours))
    assert contact in await db.members(segment_id)
    assert (contact, "entered", f"event {made[2].id} (productViewed)", made[2].id) in \
        await changes(db, segment_id)
    assert await due_of(db, segment_id, contact) == T0 + timedelta(hours=24)
    assert await run_due(db.engine, now=T0 + timedelta(hours=23, minutes=59)) == 0
    assert contact in await db.members(segment_id)
    assert await run_due(db.engine, now=T0 + timedelta(hours=24)) >= 1
    assert contact not in await db.members(segment_id)
    assert (await changes(db, segment_id))[-1] == (contact, "left", "time window moved on", None)
    # Two of three left in the window: the next check is when the second one ages out.
    assert await due_of(db, segment_id, contact) == T0 + timedelta(hours=29)


async def test_not_happened_segment_takes_contacts_of_other_events(db: Db) -> None:
    """A contact whose batch holds only other event types is still evaluated."""
    segment_id = await db.segment({"name": "never bought", "conditions": {"not": {"event": {
        "eventTypeKey": "purchase"}}}})
    await recount(db, T0)
    contact = await db.contact(email="browser@example.com")
    event = await db.event("pageView", contact_id=contact, at=T0)
    async with db.engine.begin() as conn:
        await apply(conn, db.account_id, [event], T0)
    assert contact in await db.members(segment_id)
    bought = await db.event("purchase", contact_id=contact, at=T0 + timedelta(minutes=1))
    async with db.engine.begin() as conn:
        await apply(conn, db.account_id, [bought], T0 + timedelta(minutes=1))
    assert contact not in await db.members(segment_id)


async def test_contact_changes_re_evaluate_field_conditions(db: Db) -> None:
    """Changing a contact's town moves it in and out of a town segment."""
    segment_id = await db.segment({"name": "Kyiv", "conditions": {"contact": {
        "field": "town", "op": "eq", "value": "Kyiv"}}})
    contact = await db.contact(email="towns@example.com", town="Lviv")
    await recount(db, T0)
    assert contact not in await db.members(segment_id)
    for town, inside in (("Kyiv", True), ("Odesa", False)):
        async with db.engine.begin() as conn:
            await conn.execute(update(CONTACTS).where(CONTACTS.c.id == contact).values(town=town))
            await contacts_changed(conn, account_id=db.account_id, contact_ids=[contact], now=T0)
        assert (contact in await db.members(segment_id)) is inside
    assert [c[1] for c in await changes(db, segment_id) if c[0] == contact] == ["entered", "left"]


async def test_recount_shows_progress_and_finds_existing_members(db: Db) -> None:
    """A segment made after the events is built in the background: building, processed
    of total, then ready with the members the events make."""
    buyers = [await db.contact(email=f"buyer{i}@example.com") for i in range(7)]
    for i, contact in enumerate(buyers):
        for n in range(i % 3):
            await db.event("purchase", contact_id=contact, at=T0 - timedelta(days=n),
                           params={"totalCost": 1000 * (n + 1)})
    segment_id = await db.segment({"name": "big buyers", "conditions": {"event": {
        "eventTypeKey": "purchase", "params": [{"name": "totalCost", "op": "gte",
                                                "value": 2000}]}}})
    async with db.engine.connect() as conn:
        before = await get_segment(conn, account_id=db.account_id, segment_id=segment_id)
    assert before is not None and before.status == "building" and before.build_processed == 0
    assert before.build_total >= len(buyers)
    assert await recount_step(db.engine, now=T0, chunk=3)
    async with db.engine.connect() as conn:
        midway = await get_segment(conn, account_id=db.account_id, segment_id=segment_id)
    assert midway is not None and midway.status == "building" and midway.build_processed == 3
    await recount(db, T0)
    async with db.engine.connect() as conn:
        done = await get_segment(conn, account_id=db.account_id, segment_id=segment_id)
    assert done is not None and done.status == "ready"
    assert done.build_processed == done.build_total
    assert await db.members(segment_id) == {c for i, c in enumerate(buyers) if i % 3 == 2}


async def test_other_accounts_are_untouched(db: Db) -> None:
    """An event of one account never evaluates another account's segments."""
    theirs = await db.segment({"name": "theirs", "conditions": {"event": {
        "eventTypeKey": "productViewed"}}}, account_id=db.other_account_id)
    await recount(db, T0)
    contact = await db.contact(email="mine@example.com")
    event = await db.event("productViewed", contact_id=contact, at=T0)
    async with db.engine.begin() as conn:
        await apply(conn, db.account_id, [event], T0)
    assert await db.members(theirs) == set()
