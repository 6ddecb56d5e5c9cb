"""Redis killed under load: ingest keeps accepting and committing (Redis is no part of an
acknowledgement), and once Redis is back, empty, every acknowledged event is processed."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.outage import RedisServer, Tally, counts, load, wait_processed, worker
from tests.reliability.procs import Procs, running
from tests.support import Backends, private_backends

BEFORE, OUTAGE, AFTER = 2.0, 5.0, 2.0


@pytest.fixture
def deployment(backends: Backends, tmp_path: Path) -> Iterator[tuple[RedisServer, Procs]]:
    """A deployment and one worker on a Redis server of their own."""
    valkey = RedisServer()
    valkey.start()
    own = dataclasses.replace(private_backends(backends, tmp_path), redis_url=valkey.url)
    try:
        # A limit no load here reaches: the limiter still calls Redis, then its own bucket.
        with running(own, tmp_path / "data", EVENTFLOW_SWEEP_INTERVAL="1",
                     EVENTFLOW_RATE_LIMIT="100000") as procs, worker(procs):
            yield valkey, procs
    finally:
        valkey.kill()
        own.close()


async def test_ingest_survives_a_redis_outage(deployment: tuple[RedisServer, Procs]) -> None:
    """HTTP and gRPC load while the deployment's Redis is SIGKILLed for 5 s and started
    again without its data: no call fails or waits past 5 s, each acknowledged event is
    stored once, and all are processed after Redis returns (the sweeper finds them)."""
    valkey, procs = deployment
    tally, during = Tally(), Tally()
    stop, stop_during = asyncio.Event(), asyncio.Event()
    background = asyncio.create_task(load(procs, tally, stop))
    await asyncio.sleep(BEFORE)
    valkey.kill()
    killed = time.monotonic()
    probe = asyncio.create_task(load(procs, during, stop_during, callers=1, type_key="during"))
    await asyncio.sleep(OUTAGE)
    stop_during.set()
    await probe
    await asyncio.to_thread(valkey.start)
    back = time.monotonic()
    await asyncio.sleep(AFTER)
    stop.set()
    await background
    ids = sorted(tally.acked) + sorted(during.acked)
    recovery = await wait_processed(procs.settings, ids, timeout=30)
    c = await counts(procs.settings, ids)
    print(f"\nredis outage {back - killed:.1f} s: sent {tally.sent + during.sent}, "
          f"acked {len(ids)} ({len(during.acked)} by the probe while Redis was down), "
          f"stored {c.stored}, processed {c.processed}, refused {tally.refused} "
          f"{during.refused}, slowest call {max(tally.slowest, during.slowest):.2f} s, "
          f"all processed {time.monotonic() - back:.1f} s after Redis returned "
          f"(waited {recovery:.1f} s after the load ended)")
    assert not tally.refused and not during.refused
    assert len(during.acked) >= 10, "ingest stopped while Redis was down"
    assert c.stored == len(ids) == len(set(ids)) == c.distinct_keys
    assert c.processed == c.stored
    assert max(tally.slowest, during.slowest) < 5.0
