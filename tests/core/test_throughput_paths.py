"""The fast ingest paths keep their promises: batch ids map to their own events, past
events over HTTP use the batch path, message ids expire after 24 hours."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from eventflow_client import AsyncClient
from eventflow_client.client import build_request
from tests.support import Stack


async def _key_of(stack: Stack, event_id: int) -> str:
    r = await stack.http.get(f"/api/v1/events/{event_id}", headers=stack.auth())
    assert r.status_code == 200, r.text
    return str(r.json()["keyValue"])


async def test_batch_ids_belong_to_their_own_events(stack: Stack) -> None:
    """In a 200-event batch with rejects and repeats between, each id reads back its own event."""
    requests = []
    for i in range(200):
        if i % 17 == 5:
            requests.append(build_request("bad|type", key_value=f"bad{i}"))
        elif i % 23 == 7:
            requests.append(build_request("ids", key_value=f"dup{i}", message_id="ids-repeat"))
        else:
            requests.append(build_request("ids", key_value=f"b{i}", params={"n": i}))
    async with AsyncClient(stack.grpc_target, api_key=stack.api_key) as client:
        results = await client.generate_events(requests)
    assert len(results) == 200
    first_dup = next(r.event_id for i, r in enumerate(results) if i % 23 == 7 and i % 17 != 5)
    for i, r in enumerate(results):
        if i % 17 == 5:
            assert r.status == "INVALID" and r.event_id == 0
        elif i % 23 == 7:
            assert r.event_id == first_dup
        else:
            assert r.status == "ACCEPTED" and not r.duplicate
            assert await _key_of(stack, r.event_id) == f"b{i}"


async def test_concurrent_unary_calls_get_their_own_ids(stack: Stack) -> None:
    """Calls that share one group commit each get the id of the event they sent."""
    async with AsyncClient(stack.grpc_target, api_key=stack.api_key) as client:
        ids = await asyncio.gather(*(client.generate_event("group", key_value=f"g{i}")
                                     for i in range(100)))
        assert len(set(ids)) == 100
        for i in range(0, 100, 7):
            assert await _key_of(stack, ids[i]) == f"g{i}"


async def test_past_events_post_maps_onto_the_batch_path(stack: Stack) -> None:
    """POST /api/v2/past_events answers per event in order, stores the valid ones with their
    time as past events, refuses those of a type with segmentation off, and the workers
    process the stored ones (as history: they start no workflow)."""
    await stack.segmentation_on("past_order")
    day = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    future = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d")
    body = {"events": [
        {"eventTypeKey": "past_order", "keyValue": "p1", "occurred": day,
         "params": [{"name": "sum", "value": 10}]},
        {"eventTypeKey": "past_order", "keyValue": "p2"},
        {"eventTypeKey": "past|order", "keyValue": "p3", "occurred": day},
        {"eventTypeKey": "past_order", "keyValue": "p4", "occurred": future},
        {"eventTypeKey": "past_order", "keyValue": "p5", "occurred": "yesterday"},
        {"eventTypeKey": "past_order", "keyValue": "p6", "occurred": day},
        {"eventTypeKey": "past_unsegmented", "keyValue": "p7", "occurred": day},
    ]}
    r = await stack.http.post("/api/v2/past_events", json=body, headers=stack.auth())
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [x["status"] for x in doc["results"]] == [
        "ACCEPTED", "OCCURRED_DATE_IS_REQUIRED", "INVALID", "OCCURRED_TIME_IN_FUTURE",
        "INCORRECT_OCCURRED_DATE_FORMAT", "ACCEPTED", "EVENT_SEGMENTATION_DISABLED"]
    assert doc["successCount"] == 2 and doc["errorCount"] == 5
    assert doc["results"][2]["violations"][0]["field"].startswith("events[2].")
    assert [v["field"] for v in doc["results"][6]["violations"]] == ["events[6].eventTypeKey"]
    first, last = doc["results"][0]["eventId"], doc["results"][5]["eventId"]
    stored = (await stack.http.get(f"/api/v1/events/{first}", headers=stack.auth())).json()
    assert stored["keyValue"] == "p1" and stored["occurred"].startswith(day)
    rows: list[Any] = []
    for _ in range(200):  # the workers process them within a batch
        async with stack.engine.connect() as conn:
            rows = list((await conn.execute(text(
                "SELECT is_past, processed_at, process_error FROM events WHERE id IN (:a, :b)"),
                {"a": first, "b": last})).all())
        if all(row[1] is not None for row in rows):
            break
        await asyncio.sleep(0.05)
    assert len(rows) == 2 and all(row[0] and row[1] is not None and row[2] is None
                                  for row in rows)


async def test_message_id_is_forgotten_after_24_hours(stack: Stack) -> None:
    """A message id seen more than 24 hours ago no longer de-duplicates: a new event is stored."""
    async with AsyncClient(stack.grpc_target, api_key=stack.api_key) as client:
        first = await client.generate_event("expiry", key_value="k", message_id="m-old")
        assert await client.generate_event("expiry", key_value="k", message_id="m-old") == first
        old = datetime.now(UTC) - timedelta(hours=24, minutes=1)
        naive = stack.engine.dialect.name == "sqlite"  # SQLite keeps naive UTC text
        async with stack.engine.begin() as conn:
            await conn.execute(text("UPDATE message_ids SET created_at = :t WHERE message_id = 'm-old'"),
                               {"t": old.replace(tzinfo=None) if naive else old})
        before = await stack.count_events()
        again = await client.generate_event("expiry", key_value="k", message_id="m-old")
        assert again != first and await stack.count_events() == before + 1
        assert await client.generate_event("expiry", key_value="k", message_id="m-old") == again
