"""Finding 3: the rate limit charges each event, not each coalesced call, and is one bucket
per account shared by every serving process (a Redis hash changed by one Lua script)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
import redis.asyncio as aioredis

from eventflow.v1 import events_pb2, events_pb2_grpc
from server.ingest.ratelimit import RateLimiter
from tests.reliability.procs import Procs, running
from tests.support import Backends, basic, free_port, private_backends

# A small refill beside a large burst: what is accepted in a few seconds is the burst
# plus at most RATE per second, far below what two buckets (one per process) would allow.
RATE, BURST = 10, 350


@pytest.fixture(scope="module")
def limited(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Procs]:
    own = private_backends(backends, tmp_path_factory.mktemp("rate-db"))
    try:
        with running(own, tmp_path_factory.mktemp("rate"), EVENTFLOW_RATE_LIMIT=str(RATE),
                     EVENTFLOW_RATE_BURST=str(BURST)) as deployment:
            yield deployment
    finally:
        own.close()


async def _new_key(procs: Procs) -> str:
    """A new account's key: an idle, full bucket."""
    async with httpx.AsyncClient(base_url=procs.http_url, timeout=30) as http:
        r = await http.post("/api/v1/admin/accounts", json={"name": "rate"},
                            headers={"Authorization": basic(procs.admin_key)})
    assert r.status_code == 201, r.text
    return str(r.json()["apiKey"])


def _event(key: str) -> events_pb2.GenerateEventRequest:
    return events_pb2.GenerateEventRequest(event_type_key="burst", key_value=key)


async def _stored(procs: Procs, key: str) -> int:
    async with grpc.aio.insecure_channel(procs.grpc_target) as channel:
        reply = await events_pb2_grpc.EventServiceStub(channel).ListEvents(
            events_pb2.ListEventsRequest(event_type_key="burst", page_size=1000),
            metadata=(("x-api-key", key),))
    return len(reply.events)


def _ceiling(seconds: float) -> int:
    return BURST + int(RATE * seconds) + 1


async def test_requests_arriving_together_get_the_burst(limited: Procs) -> None:
    """400 single-event POSTs arriving together at an idle account: the burst (350) is
    accepted, each of the rest is a 429 with Retry-After, and exactly the accepted are
    stored (before: 2 accepted, the coalesced batch charged whole)."""
    key = await _new_key(limited)
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(base_url=limited.http_url, timeout=60, limits=limits) as http:
        started = time.monotonic()
        answers = await asyncio.gather(*(
            http.post("/api/v2/event", headers={"Authorization": basic(key)},
                      json={"eventTypeKey": "burst", "keyValue": f"k{i}"})
            for i in range(400)))
        elapsed = time.monotonic() - started
    codes = [a.status_code for a in answers]
    accepted = codes.count(200)
    print(f"\n400 together: {accepted} accepted, {codes.count(429)} x 429 in {elapsed:.2f} s")
    assert set(codes) <= {200, 429}
    assert BURST <= accepted <= _ceiling(elapsed)
    for a in answers:
        if a.status_code == 429:
            assert int(a.headers["Retry-After"]) >= 1
            assert "events per second" in a.json()["error"]
    assert await _stored(limited, key) == accepted


async def test_a_batch_of_351_events_keeps_350(limited: Procs) -> None:
    """GenerateEvents of 351 events to an idle account with a burst of 350: the call is OK,
    the first 350 are ACCEPTED and stored, the 351st RATE_LIMITED with retry_after (before:
    always refused whole)."""
    key = await _new_key(limited)
    async with grpc.aio.insecure_channel(limited.grpc_target) as channel:
        reply = await events_pb2_grpc.EventServiceStub(channel).GenerateEvents(
            events_pb2.GenerateEventsRequest(events=[_event(f"b{i}") for i in range(351)]),
            metadata=(("x-api-key", key),))
    statuses = [r.status for r in reply.results]
    assert statuses[:BURST] == ["ACCEPTED"] * BURST
    assert statuses[BURST:] == ["RATE_LIMITED"]
    assert reply.results[BURST].retry_after >= 1 and not reply.results[BURST].event_id
    assert (reply.success_count, reply.error_count) == (BURST, 1)
    assert await _stored(limited, key) == BURST


async def test_serving_processes_share_one_bucket(limited: Procs) -> None:
    """Batches sent at once over 16 fresh connections (so both serving processes get some,
    but for a chance of 2^-15) are accepted up to one burst in all, not one per process;
    the bucket is a key under the deployment's Redis prefix."""
    key = await _new_key(limited)

    async def one(n: int) -> list[str]:
        async with grpc.aio.insecure_channel(
                limited.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
            reply = await events_pb2_grpc.EventServiceStub(ch).GenerateEvents(
                events_pb2.GenerateEventsRequest(events=[_event(f"s{n}-{i}") for i in range(30)]),
                metadata=(("x-api-key", key),), timeout=30)
        return [r.status for r in reply.results]

    started = time.monotonic()
    statuses = [s for batch in await asyncio.gather(*(one(n) for n in range(16))) for s in batch]
    elapsed = time.monotonic() - started
    accepted = statuses.count("ACCEPTED")
    print(f"\n16 x 30 over fresh connections: {accepted} accepted in {elapsed:.2f} s")
    assert set(statuses) <= {"ACCEPTED", "RATE_LIMITED"}
    assert BURST <= accepted <= _ceiling(elapsed)
    client = aioredis.Redis.from_url(limited.env["REDIS_URL"])
    try:
        buckets = await client.keys(limited.env["EVENTFLOW_REDIS_PREFIX"] + "ratelimit:*")
    finally:
        await client.aclose()
    assert buckets


async def test_without_redis_a_process_keeps_its_share() -> None:
    """A limiter whose Redis does not answer fails open to a bucket of its own holding
    1/processes of the burst, without waiting on Redis for each call."""
    limiter = RateLimiter(per_second=10, burst=100, redis_url=f"redis://127.0.0.1:{free_port()}",
                          prefix="none:", processes=4)
    try:
        started = time.monotonic()
        first = await limiter.admit(1, 40)
        again = [await limiter.admit(1, 1) for _ in range(20)]
        elapsed = time.monotonic() - started
    finally:
        await limiter.close()
    assert first.granted == 25 and not limiter.shared
    assert sum(a.granted for a in again) <= 1 + int(elapsed * 10 / 4)
    assert elapsed < 2
