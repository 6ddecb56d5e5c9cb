"""The incremental result (events applied as they commit, past events among them, contact
changes, due windows handled as the clock passes them) equals the full recount, on random
event streams and random clocks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.accounts import create_account
from server.contacts.tables import CONTACTS
from server.segments.loop import recount_step, run_due
from server.segments.membership import apply, contacts_changed
from server.segments.tables import SEGMENT_DUE
from tests.segments.storage import Db, open_db

T0 = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)  # a Friday evening
TYPES = ("view", "buy")
TOWNS = ("Kyiv", "Lviv")
DEFINITIONS: list[dict[str, Any]] = [
    {"event": {"eventTypeKey": "view", "count": {"op": "gte", "value": 2}, "within": "PT2H"}},
    {"event": {"eventTypeKey": "view", "count": {"op": "between", "value": [1, 2]},
               "within": "PT90M"}},
    {"not": {"event": {"eventTypeKey": "buy", "within": "P1D"}}},
    {"event": {"eventTypeKey": "buy", "within": "today",
               "params": [{"name": "total", "op": "gt", "value": 1500}]}},
    {"event": {"eventTypeKey": "view", "within": "thisWeek", "count": {"op": "lt", "value": 3}}},
    {"event": {"eventTypeKey": "buy", "first": {"op": "within", "value": "PT3H"}}},
    {"event": {"eventTypeKey": "view", "last": {"op": "olderThan", "value": "PT1H"}}},
    {"any": [{"contact": {"field": "town", "op": "eq", "value": "Kyiv"}},
             {"all": [{"event": {"eventTypeKey": "buy", "within": "yesterday"}},
                      {"not": {"event": {"eventTypeKey": "view", "within": "PT30M"}}}]}]},
]
ZONES = ("UTC", "Europe/Kyiv", "America/New_York")

minutes = st.integers(0, 4 * 24 * 60)
steps = st.lists(st.one_of(
    st.tuples(st.just("event"), minutes, st.integers(0, 2), st.sampled_from(TYPES),
              st.integers(0, 3000)),
    st.tuples(st.just("town"), minutes, st.integers(0, 2), st.sampled_from(TOWNS), st.just(0)),
    st.tuples(st.just("tick"), minutes, st.just(0), st.just(""), st.just(0)),
    # A contact an event creates (the worker's linker): only that event's batch sees it.
    st.tuples(st.just("new"), minutes, st.just(0), st.sampled_from(TYPES), st.integers(0, 3000)),
    # A past event (eSputnik's import): received now, happened this many minutes before,
    # perhaps before every window and calendar period it could count in.
    st.tuples(st.just("past"), minutes, st.integers(0, 2), st.sampled_from(TYPES),
              st.integers(0, 3 * 24 * 60))),
    max_size=14)


@pytest.fixture(scope="module")
async def db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Db]:
    opened = await open_db(tmp_path_factory.mktemp("segments-prop"))
    yield opened
    await opened.close()


async def _stamp(conn: AsyncConnection, contact_ids: list[int], at: datetime) -> None:
    """Created and changed at ``at`` on the test's clock (apply tells new contacts by it)."""
    await conn.execute(update(CONTACTS).where(CONTACTS.c.id.in_(contact_ids))
                       .values(created_at=at, updated_at=at))


async def _settle(db: Db, now: datetime) -> None:
    while await run_due(db.engine, now=now):
        pass
    while await recount_step(db.engine, now=now):
        pass


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=steps, tail=minutes, zone=st.sampled_from(ZONES))
async def test_incremental_membership_equals_a_full_recount(
        db: Db, plan: list[tuple[str, int, int, str, int]], tail: int, zone: str) -> None:
    """After any stream of events, contact changes and clock ticks, every segment's
    members equal those of a copy of it recounted from scratch at the end."""
    account_id, _ = await create_account(db.engine, name="prop")
    incremental = [await db.segment({"name": f"s{i}", "conditions": cond, "timeZone": zone},
                                    account_id=account_id)
                   for i, cond in enumerate(DEFINITIONS)]
    await _settle(db, T0)
    contacts = [await db.contact(email=f"p{account_id}-{i}@example.com", account_id=account_id,
                                 town=TOWNS[i % 2]) for i in range(3)]
    async with db.engine.begin() as conn:  # a new contact is a contact change
        await _stamp(conn, contacts, T0)
        await contacts_changed(conn, account_id=account_id, contact_ids=contacts, now=T0,
                               reason="contact created")
    last = T0
    for kind, minute, who, what, total in sorted(plan, key=lambda s: s[1]):
        now = T0 + timedelta(minutes=minute)
        last = now
        await _settle(db, now)
        if kind in ("event", "new"):
            if kind == "new":
                contacts.append(await db.contact(email=f"p{account_id}-{len(contacts)}@x.com",
                                                 account_id=account_id, town=TOWNS[0]))
                async with db.engine.begin() as conn:
                    await _stamp(conn, contacts[-1:], now)
            contact_id = contacts[-1] if kind == "new" else contacts[who]
            event = await db.event(what, contact_id=contact_id, at=now, account_id=account_id,
                                   params={"total": total})
            async with db.engine.begin() as conn:  # as the worker: only the batch's types
                await apply(conn, account_id, [event], now, changed_since=now)
        elif kind == "past":
            event = await db.event(what, contact_id=contacts[who], at=now, account_id=account_id,
                                   params={"total": 2000}, occurred=now - timedelta(minutes=total))
            async with db.engine.begin() as conn:
                await apply(conn, account_id, [event], now, changed_since=now)
        elif kind == "town":
            async with db.engine.begin() as conn:
                await conn.execute(update(CONTACTS).where(CONTACTS.c.id == contacts[who])
                                   .values(town=what, updated_at=now))
                await contacts_changed(conn, account_id=account_id,
                                       contact_ids=[contacts[who]], now=now)
    end = last + timedelta(minutes=tail)
    await _settle(db, end)
    full = [await db.segment({"name": f"f{i}", "conditions": cond, "timeZone": zone},
                             account_id=account_id) for i, cond in enumerate(DEFINITIONS)]
    await _settle(db, end)
    for i, (mine, fresh) in enumerate(zip(incremental, full, strict=True)):
        assert await db.members(mine) == await db.members(fresh), DEFINITIONS[i]
    async with db.engine.begin() as conn:  # later examples' clocks start over
        await conn.execute(delete(SEGMENT_DUE).where(SEGMENT_DUE.c.account_id == account_id))
