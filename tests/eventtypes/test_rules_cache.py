"""The "Validate parameters" rules and the segmentation switches are cached per serving
process and dropped by every process the moment a change commits: two real servers on one
database and one Redis."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from sqlalchemy import event

from eventflow.v1 import events_pb2, events_pb2_grpc
from server.app import Running, start_server
from server.eventtypes.rules import CHANNEL
from server.services import register_all
from tests.support import Stack, grpc_reason


@pytest.fixture
async def second(stack: Stack) -> AsyncIterator[tuple[Running, grpc.aio.Channel]]:
    """Another serving process of the same deployment (its own engine, cache and feed)."""
    running = await start_server(stack.settings.with_(grpc_addr="127.0.0.1:0"),
                                 register=register_all)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    client = aioredis.Redis.from_url(stack.settings.redis_url)
    try:
        # Both servers subscribed: the second caches, so only the feed can correct it.
        for _ in range(200):
            (_, n), = await client.pubsub_numsub(stack.settings.redis_prefix + CHANNEL)
            if n >= 2:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the second server never subscribed to the change feed")
        yield running, channel
    finally:
        await client.aclose()
        await channel.close()
        await running.stop(grace=1)


def _request(type_key: str, **params: Any) -> events_pb2.GenerateEventRequest:
    req = events_pb2.GenerateEventRequest(event_type_key=type_key, key_value="k@example.com")
    for name, value in params.items():
        req.params.add(name=name).value.string_value = value
    return req


async def test_a_change_reaches_the_other_process_before_it_is_answered(
        stack: Stack, second: tuple[Running, grpc.aio.Channel]) -> None:
    """Rules are read once, then cached; a change of rules or of segmentation is seen by
    the other process's next event, other settings drop nothing."""
    running, channel = second
    key = f"fan_{secrets.token_hex(4)}"
    stub = events_pb2_grpc.EventServiceStub(channel)
    meta = stack.meta()
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "validate_params" in statement:
            reads.append(statement)

    event.listen(running.engine.sync_engine, "before_cursor_execute", count)
    try:
        await stub.GenerateEvent(_request(key), metadata=meta)
        assert len(reads) == 1  # the account's rules, read once...
        for _ in range(20):
            await stub.GenerateEvent(_request(key), metadata=meta)
        assert len(reads) == 1  # ...and then served from the cache

        r = await stack.http.patch(f"/api/v1/event-types/{key}", headers=stack.auth(),
                                   json={"validateParams": [{"name": "sku", "required": True}]})
        assert r.status_code == 200, r.text
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GenerateEvent(_request(key), metadata=meta)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "has no 'sku'" in (err.value.details() or "")
        await stub.GenerateEvent(_request(key, sku="1"), metadata=meta)
        assert len(reads) == 2

        await stack.http.patch(f"/api/v1/event-types/{key}", headers=stack.auth(),
                               json={"validateParams": []})
        await stub.GenerateEvent(_request(key), metadata=meta)
        # Other settings are not cached here: changing them drops nothing.
        await stack.http.patch(f"/api/v1/event-types/{key}", headers=stack.auth(),
                               json={"createContacts": False})
        await stub.GenerateEvent(_request(key), metadata=meta)
        assert len(reads) == 3

        # Segmentation is (past events of a type that is off are refused): switching it
        # on reaches this process before the PATCH answers, and so does switching it off.
        past = _request(key)
        past.occurred.FromDatetime(datetime.now(UTC) - timedelta(days=1))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GenerateEvent(past, metadata=meta)
        assert grpc_reason(err.value) == "SEGMENTATION_DISABLED"
        await stack.segmentation_on(key)
        await stub.GenerateEvent(past, metadata=meta)
        assert len(reads) == 4
        await stack.http.patch(f"/api/v1/event-types/{key}", headers=stack.auth(),
                               json={"segmentation": False})
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GenerateEvent(past, metadata=meta)
        assert grpc_reason(err.value) == "SEGMENTATION_DISABLED"
    finally:
        event.remove(running.engine.sync_engine, "before_cursor_execute", count)
