"""Segments on SQLite (issue 13's benchmark): full-count build time, event processing
with 0 vs 20 active segments (the incremental cost, as a ratio in one run), membership
query latency, expiry lag, and membership after commit through ``make run``. Figures,
not a test (docs/bench.md, "Segments").

The default size is the issue's: 100,000 contacts and 1,000,000 stored events (``make
bench``). ``SEGBENCH_SMALL=1`` runs 1,000 contacts and 10,000 events (a minute or so, for
development); ``SEGBENCH_CONTACTS`` / ``SEGBENCH_EVENTS`` / ``SEGBENCH_PROCESS_EVENTS`` /
``SEGBENCH_COMMIT_EVENTS`` set each size. Processing is measured on the worker's own calls
(events inserted linked to their contacts, then ``membership.apply`` in the same
transaction, per batch), without the arq hop, so the ratio isolates what segments add to
a batch. Membership after commit is the whole stack: an event sent to ``make run``
(server, gateway, workers), from its answer (committed) until its contact shows as a
member, read from the database.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import orjson
from sqlalchemy import func, insert, select

from server.accounts import create_account
from server.config import Settings, normalise_database_url
from server.contacts.tables import CONTACTS
from server.db.engine import create_engine, migrate_async
from server.db.models import Event, EventType, table_of, utcnow
from server.segments import queries
from server.segments.definition import parse_definition
from server.segments.loop import SegmentLoop, recount_step
from server.segments.membership import apply
from server.segments.store import create_segment
from server.segments.tables import SEGMENT_CHANGES

SMALL = os.environ.get("SEGBENCH_SMALL", "") not in ("", "0")
CONTACTS_N = int(os.environ.get("SEGBENCH_CONTACTS", "1000" if SMALL else "100000"))
EVENTS_N = int(os.environ.get("SEGBENCH_EVENTS", "10000" if SMALL else "1000000"))
PROCESS_EVENTS = int(os.environ.get("SEGBENCH_PROCESS_EVENTS", "1000" if SMALL else "5000"))
BATCH = int(os.environ.get("SEGBENCH_BATCH", "100"))
EXPIRY_CONTACTS = int(os.environ.get("SEGBENCH_EXPIRY_CONTACTS", "100" if SMALL else "300"))
COMMIT_EVENTS = int(os.environ.get("SEGBENCH_COMMIT_EVENTS", "50" if SMALL else "200"))
COMMIT_TARGET_MS = 1000  # the contract: membership within 1 s of commit, p99
# Segmentation switched on long before every stored event: they all count.
SWITCHED_ON = datetime(2000, 1, 1, tzinfo=UTC)
TYPES = ("productViewed", "addToCart", "purchase", "pageView", "search")
_events = table_of(Event)
_types = table_of(EventType)


@dataclass(frozen=True, slots=True)
class Ref:
    id: int
    event_type_key: str
    contact_id: int | None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def body(key: str, contact: int, price: int) -> str:
    return orjson.dumps({"eventTypeKey": key, "keyValue": f"c{contact}@example.com",
                         "params": [{"name": "price", "value": price},
                                    {"name": "brand", "value": "Acme" if price % 3 else "Other"}]}
                        ).decode()


async def populate(engine: Any, account_id: int) -> tuple[list[int], dict[str, int]]:
    now = utcnow()
    # Contacts from before the processing rows (the worker treats one written since its
    # batch's events arrived as new, and evaluates it against every segment).
    made = now - timedelta(days=30)
    async with engine.begin() as conn:
        type_ids = {}
        for key in TYPES:
            type_ids[key] = int((await conn.execute(insert(_types).values(
                account_id=account_id, key=key, create_contacts=True, created_at=now,
                segmentation=True, segmentation_since=SWITCHED_ON)
                .returning(_types.c.id))).scalar_one())
        for start in range(0, CONTACTS_N, 5000):
            await conn.execute(insert(CONTACTS), [
                {"account_id": account_id, "email": f"c{i}@example.com",
                 "email_key": f"c{i}@example.com", "town": ("Kyiv", "Lviv", "Odesa")[i % 3],
                 "status": "active", "source": "api", "created_at": made, "updated_at": made}
                for i in range(start, min(CONTACTS_N, start + 5000))])
        ids = [int(r.id) for r in await conn.execute(
            select(CONTACTS.c.id).where(CONTACTS.c.account_id == account_id))]
    rng = random.Random(13)
    for start in range(0, EVENTS_N, 20000):
        rows = []
        for _ in range(start, min(EVENTS_N, start + 20000)):
            key = rng.choice(TYPES)
            contact = rng.choice(ids)
            at = now - timedelta(seconds=rng.randrange(7 * 86400))
            rows.append({"account_id": account_id, "event_type_id": type_ids[key],
                         "key_value": f"c{contact}@example.com",
                         "body": body(key, contact, rng.randrange(2000)),
                         "contact_id": contact, "received_at": at, "processed_at": at,
                         "is_past": False})
        async with engine.begin() as conn:
            await conn.execute(insert(_events), rows)
    return ids, type_ids


def definitions(n: int) -> list[dict[str, Any]]:
    shapes = [
        lambda i: {"event": {"eventTypeKey": TYPES[i % 5], "count": {"op": "gte", "value": 2},
                             "within": f"PT{24 + i}H"}},
        lambda i: {"all": [{"event": {"eventTypeKey": "productViewed",
                                      "params": [{"name": "price", "op": "gt", "value": 100 * i}]}},
                           {"not": {"event": {"eventTypeKey": "purchase", "within": "P3D"}}}]},
        lambda i: {"any": [{"contact": {"field": "town", "op": "eq", "value": "Kyiv"}},
                           {"event": {"eventTypeKey": TYPES[i % 5], "within": "today"}}]},
        lambda i: {"event": {"eventTypeKey": "addToCart",
                             "last": {"op": "olderThan", "value": f"PT{i + 1}H"}}},
    ]
    return [{"name": f"bench {i}", "conditions": shapes[i % len(shapes)](i)} for i in range(n)]


async def build_time(engine: Any, account_id: int) -> tuple[float, int, int]:
    async with engine.begin() as conn:
        segment_id = await create_segment(conn, account_id=account_id, definition=parse_definition(
            {"name": "viewers", "conditions": {"event": {
                "eventTypeKey": "productViewed", "count": {"op": "gte", "value": 3},
                "within": "P7D", "params": [{"name": "price", "op": "gt", "value": 500}]}}}))
    started = time.perf_counter()
    while await recount_step(engine, now=utcnow()):
        pass
    elapsed = time.perf_counter() - started
    async with engine.connect() as conn:
        return elapsed, await queries.count_members(conn, segment_id=segment_id), segment_id


async def process(engine: Any, account_id: int, ids: list[int], type_ids: dict[str, int],
                  *, seed: int) -> float:
    """Events per second through insert + ``apply`` per batch (the worker's shape)."""
    rng = random.Random(seed)
    started = time.perf_counter()
    for _ in range(0, PROCESS_EVENTS, BATCH):
        now = utcnow()
        rows = []
        for _ in range(BATCH):
            key, contact = rng.choice(TYPES), rng.choice(ids)
            rows.append({"account_id": account_id, "event_type_id": type_ids[key],
                         "key_value": f"c{contact}@example.com",
                         "body": body(key, contact, rng.randrange(2000)), "contact_id": contact,
                         "received_at": now, "processed_at": now, "is_past": False})
        async with engine.begin() as conn:
            made = (await conn.execute(insert(_events).returning(
                _events.c.id, _events.c.event_type_id, _events.c.contact_id), rows)).all()
            keys = {v: k for k, v in type_ids.items()}
            await apply(conn, account_id, [Ref(int(r.id), keys[int(r.event_type_id)],
                                               int(r.contact_id)) for r in made], now,
                        changed_since=now - timedelta(minutes=1))
    return PROCESS_EVENTS / (time.perf_counter() - started)


async def query_latency(engine: Any, segment_id: int, ids: list[int]) -> dict[str, list[float]]:
    rng = random.Random(7)
    out: dict[str, list[float]] = {"one member": [], "page of 500": [], "count": []}
    async with engine.connect() as conn:
        for _ in range(300):
            t = time.perf_counter()
            await queries.get_member(conn, segment_id=segment_id, contact_id=rng.choice(ids))
            out["one member"].append(time.perf_counter() - t)
        for i in range(50):
            t = time.perf_counter()
            await queries.list_members(conn, segment_id=segment_id, offset=i * 100, limit=500)
            out["page of 500"].append(time.perf_counter() - t)
            t = time.perf_counter()
            await queries.count_members(conn, segment_id=segment_id)
            out["count"].append(time.perf_counter() - t)
    return out


async def expiry_lag(engine: Any, account_id: int, ids: list[int], type_ids: dict[str, int]
                     ) -> list[float]:
    """Contacts enter a PT2S segment with one event each; the loop lets them go. Lag:
    the recorded exit time minus the window's end."""
    async with engine.begin() as conn:
        segment_id = await create_segment(conn, account_id=account_id, definition=parse_definition(
            {"name": "blink", "conditions": {"event": {"eventTypeKey": "search",
                                                       "within": "PT2S"}}}))
    loop = SegmentLoop(engine)
    loop.start()
    while True:  # its recount first
        async with engine.connect() as conn:
            status = (await conn.execute(text_status(segment_id))).scalar_one()
        if status == "ready":
            break
        await asyncio.sleep(0.2)
    # Events the processing rows stored seconds ago are in the window too: let them age out
    # before timing ours.
    await asyncio.sleep(3.0)
    async with engine.connect() as conn:
        before = int((await conn.execute(select(func.coalesce(func.max(SEGMENT_CHANGES.c.id), 0))
                                         )).scalar_one())
    ends: dict[int, datetime] = {}
    for contact in ids[:EXPIRY_CONTACTS]:
        now = utcnow()
        async with engine.begin() as conn:
            made = (await conn.execute(insert(_events).values(
                account_id=account_id, event_type_id=type_ids["search"],
                key_value=f"c{contact}@example.com", body=body("search", contact, 1),
                contact_id=contact, received_at=now, processed_at=now, is_past=False)
                .returning(_events.c.id))).scalar_one()
            await apply(conn, account_id, [Ref(int(made), "search", contact)], now,
                        changed_since=now - timedelta(minutes=1))
        ends[contact] = now + timedelta(seconds=2)
        await asyncio.sleep(0.005)
    await asyncio.sleep(4.0)
    await loop.close()
    async with engine.connect() as conn:
        rows = (await conn.execute(select(SEGMENT_CHANGES.c.contact_id, SEGMENT_CHANGES.c.at)
                                   .where((SEGMENT_CHANGES.c.segment_id == segment_id)
                                          & (SEGMENT_CHANGES.c.change == "left")
                                          & (SEGMENT_CHANGES.c.id > before)))).all()
    lags = []
    for row in rows:
        if int(row.contact_id) not in ends:
            continue
        at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
        lags.append((at - ends[int(row.contact_id)]).total_seconds())
    return lags


def after_commit() -> list[float]:
    """Seconds from an event's answer (committed) to its contact showing as a member, one
    event at a time, each a new contact, through ``make run`` on a fresh SQLite data dir."""
    from bench import stack
    from bench.workers_bench import _basic, deployment

    lags: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, stack.valkey(Path(tmp)) as redis_url, \
            deployment(Path(tmp), "segments", pg_url="", redis_url=redis_url,
                       smtp_url="") as dep, dep.make_run("segments"):
        http = httpx.Client(base_url=f"http://127.0.0.1:{dep.http_port}", timeout=30,
                            headers={"Authorization": _basic(stack.API_KEY)})
        http.patch("/api/v1/event-types/benchSeen", json={"segmentation": True}).raise_for_status()
        made = http.post("/api/v1/segments", json={"name": "seen", "conditions": {"event": {
            "eventTypeKey": "benchSeen", "within": "PT1H"}}})
        made.raise_for_status()
        segment_id = int(made.json()["id"])
        while http.get(f"/api/v1/segments/{segment_id}").json()["status"] != "ready":
            time.sleep(0.1)
        db = dep.db
        for i in range(COMMIT_EVENTS):
            email = f"commit{i}@example.com"
            http.post("/api/v2/event", json={"eventTypeKey": "benchSeen", "keyValue": email,
                                             "params": [{"name": "email", "value": email}]}
                      ).raise_for_status()
            answered = time.perf_counter()
            while not db.query("SELECT 1 FROM segment_members m JOIN contacts c "
                               "ON c.id = m.contact_id WHERE m.segment_id = ? "
                               "AND c.email_key = ?", segment_id, email):
                if time.perf_counter() - answered > 30:
                    break  # counted as 30 s: far past the contract
                time.sleep(0.002)
            lags.append(time.perf_counter() - answered)
        http.close()
    return lags


def text_status(segment_id: int) -> Any:
    from server.segments.tables import SEGMENTS

    return select(SEGMENTS.c.status).where(SEGMENTS.c.id == segment_id)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = normalise_database_url(f"sqlite:///{Path(tmp) / 'bench.db'}")
        settings = Settings(database_url=url, data_dir=Path(tmp), sqlite_synchronous="NORMAL")
        await migrate_async(settings)
        engine = create_engine(settings)
        account_id, _ = await create_account(engine, name="bench")
        t = time.perf_counter()
        ids, type_ids = await populate(engine, account_id)
        print(f"segments: {CONTACTS_N:,} contacts, {EVENTS_N:,} stored events, SQLite "
              f"(synchronous=NORMAL); loaded in {time.perf_counter() - t:.1f} s")
        bare = await process(engine, account_id, ids, type_ids, seed=1)
        seconds, members, built = await build_time(engine, account_id)
        print(f"  full count (build) of one segment: {seconds:.2f} s, "
              f"{CONTACTS_N / seconds:,.0f} contacts/s, {members:,} members")
        async with engine.begin() as conn:  # with the built one, 20 active segments
            for doc in definitions(19):
                await create_segment(conn, account_id=account_id,
                                     definition=parse_definition(doc))
        while await recount_step(engine, now=utcnow()):
            pass
        loaded = await process(engine, account_id, ids, type_ids, seed=2)
        print(f"  processing, batches of {BATCH}: 0 segments {bare:,.0f} ev/s (the ceiling), "
              f"20 segments {loaded:,.0f} ev/s: ratio {loaded / bare:.2f} "
              f"({(1 / loaded - 1 / bare) * 1e6:,.0f} us per event for segments)")
        latency = await query_latency(engine, built, ids)
        for name, values in latency.items():
            print(f"  membership query {name}: p50 {pct(values, 0.5) * 1000:.2f} ms, "
                  f"p99 {pct(values, 0.99) * 1000:.2f} ms")
        lags = await expiry_lag(engine, account_id, ids, type_ids)
        if lags:
            print(f"  expiry lag ({len(lags)} contacts leaving a PT2S window): p50 "
                  f"{statistics.median(lags) * 1000:.0f} ms, p99 {pct(lags, 0.99) * 1000:.0f} "
                  f"ms, max {max(lags) * 1000:.0f} ms")
        else:
            print("  expiry lag: no contact left (loop did not run?)")
        await engine.dispose()
    lags = after_commit()
    p99 = pct(lags, 0.99) * 1000
    print(f"  membership after commit ({len(lags)} events one at a time, make run, SQLite): "
          f"p50 {statistics.median(lags) * 1000:.0f} ms, p99 {p99:.0f} ms, max "
          f"{max(lags) * 1000:.0f} ms (contract p99 <= {COMMIT_TARGET_MS} ms: "
          f"{'met' if p99 <= COMMIT_TARGET_MS else 'NOT met'})")


if __name__ == "__main__":
    asyncio.run(main())
