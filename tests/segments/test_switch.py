"""The segmentation switch (issue 13): only events of types with segmentation on count, and
only those received after it was switched on; switching it off recounts the segments
reading the type. The batch path (``apply``), due re-evaluations and the full recount
all apply the rule (``server.segments.switch``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from server.eventtypes.settings import SettingsPatch
from server.eventtypes.store import update_type
from server.segments.loop import recount_step, run_due
from server.segments.membership import apply, contacts_changed
from server.segments.store import get_segment
from tests.segments.storage import Db, open_db

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Db]:
    opened = await open_db(tmp_path_factory.mktemp("segments-switch"))
    yield opened
    await opened.close()


async def _switch(db: Db, key: str, on: bool, now: datetime) -> None:
    await update_type(db.engine, account_id=db.account_id, key=key,
                      patch=SettingsPatch(segmentation=on), now=now)


async def _recount(db: Db, now: datetime) -> None:
    while await recount_step(db.engine, now=now, chunk=2):
        pass


async def _status(db: Db, segment_id: int) -> str:
    async with db.engine.connect() as conn:
        found = await get_segment(conn, account_id=db.account_id, segment_id=segment_id)
    assert found is not None
    return found.status


async def test_off_type_counts_nothing_and_on_counts_only_what_came_after(db: Db) -> None:
    """A type with segmentation off counts no events; switched on at T1, events received
    before T1 still count for nothing (incrementally and in the recount), those after do."""
    await update_type(db.engine, account_id=db.account_id, key="signup",
                      patch=SettingsPatch(create_contacts=True), now=T0)  # exists, off
    segment_id = await db.segment({"name": "signed up", "conditions": {"event": {
        "eventTypeKey": "signup"}}})
    contact = await db.contact(email="switch@example.com")
    early = await db.event("signup", contact_id=contact, at=T0)
    async with db.engine.begin() as conn:
        await apply(conn, db.account_id, [early], T0)
    await _recount(db, T0)
    assert contact not in await db.members(segment_id)

    t1 = T0 + timedelta(hours=1)
    await _switch(db, "signup", True, t1)
    assert await _status(db, segment_id) == "ready"  # switching on needs no recount
    async with db.engine.begin() as conn:
        await contacts_changed(conn, account_id=db.account_id, contact_ids=[contact],
                               now=t1 + timedelta(minutes=1))
    assert contact not in await db.members(segment_id), "an event from before the switch"

    later = await db.event("signup", contact_id=contact, at=t1 + timedelta(minutes=5))
    async with db.engine.begin() as conn:
        await apply(conn, db.account_id, [later], t1 + timedelta(minutes=5))
    assert contact in await db.members(segment_id)


async def test_switching_off_recounts_and_members_leave(db: Db) -> None:
    """Switching a type off marks the segments reading it building; the recount takes
    out the members its events made, and leaves segments on other types alone."""
    await _switch(db, "viewed", True, T0)
    reads = await db.segment({"name": "viewers", "conditions": {"event": {
        "eventTypeKey": "viewed", "within": "PT48H"}}})
    other = await db.segment({"name": "buyers", "conditions": {"event": {
        "eventTypeKey": "bought"}}})
    await _recount(db, T0)
    contact = await db.contact(email="viewer-off@example.com")
    seen = await db.event("viewed", contact_id=contact, at=T0 + timedelta(minutes=1))
    bought = await db.event("bought", contact_id=contact, at=T0 + timedelta(minutes=1))
    async with db.engine.begin() as conn:
        await apply(conn, db.account_id, [seen, bought], T0 + timedelta(minutes=1))
    assert contact in await db.members(reads) and contact in await db.members(other)

    t2 = T0 + timedelta(hours=2)
    await _switch(db, "viewed", False, t2)
    assert await _status(db, reads) == "building"
    assert await _status(db, other) == "ready"
    await _recount(db, t2)
    assert contact not in await db.members(reads)
    assert contact in await db.members(other)
    # A later due re-evaluation keeps it out too.
    await run_due(db.engine, now=T0 + timedelta(hours=49))
    assert contact not in await db.members(reads)
