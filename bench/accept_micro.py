"""``python -m bench.accept_micro``: CPU per event of the acceptance path, in-process.

Not part of ``make bench`` (no servers, no database): the server's decode + ``accept`` of
one request (from the bytes received, as the servicer reads it), ``GenerateEvents`` of 500 through the servicer with a writer that stores
nothing, and the gateway's JSON body to wire bytes, on the small and ~1 KB bench events.
Best of five ``time.process_time`` rounds; compare runs on the same machine only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, cast

import orjson

from bench.payloads import kb_body, request, small_body
from eventflow.v1 import events_pb2
from server.api.errors import current_account
from server.api.events import EventService, IngestDeps
from server.codec.jsonbody import event_from_json
from server.codec.proto import request_to_input
from server.codec.received import Received
from server.codec.wire import event_bytes
from server.config import Settings
from server.gateway.http import parse_json
from server.ingest.accept import accept
from server.ingest.model import ValidEvent, WriteResult
from server.ingest.ratelimit import RateLimiter

ROUNDS = 5
N = 20_000


class _NullWriter:
    async def write(self, events: Sequence[ValidEvent]) -> list[WriteResult]:
        return [WriteResult(event_id=i + 1) for i in range(len(events))]


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Drive a coroutine that never suspends (nothing here waits on I/O)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("the coroutine suspended")


class _CachedNoRules:
    """The event-type rules of an account without validated types, found in the cache
    (a serving process's steady state)."""

    def cached(self, account_id: int) -> dict[str, Any]:
        return {}

    async def load(self, account_id: int) -> dict[str, Any]:
        raise AssertionError("the cache holds the account")


def _best(loop: Callable[[int], None], n: int = N) -> float:
    """Microseconds of CPU per iteration, the best of ``ROUNDS``."""
    times = []
    for _ in range(ROUNDS):
        start = time.process_time()
        loop(n)
        times.append((time.process_time() - start) / n * 1e6)
    return min(times)


def main() -> None:
    current_account.set(1)
    deps = IngestDeps(settings=Settings(), writer=cast(Any, _NullWriter()),
                      limiter=RateLimiter(per_second=0), engine=cast(Any, None),
                      event_types=cast(Any, _CachedNoRules()))
    service = EventService(deps)
    using = service._acceptance
    for name, body in (("small", small_body(1)), ("1 KB", kb_body(1))):
        req, raw = request(body), orjson.dumps(body)
        wire = req.SerializeToString()
        batch = events_pb2.GenerateEventsRequest(events=[req] * 500)
        received = Received(batch, batch.SerializeToString())

        def server(n: int, req: events_pb2.GenerateEventRequest = req, wire: bytes = wire
                   ) -> None:
            for _ in range(n):
                _run(accept(request_to_input(req, wire), account_id=1, using=using))

        def servicer(n: int, received: Received[events_pb2.GenerateEventsRequest] = received
                     ) -> None:
            for _ in range(n // 500):
                _run(service.GenerateEvents(received, cast(Any, None)))

        def gateway(n: int, raw: bytes = raw) -> None:
            for _ in range(n):
                event_bytes(event_from_json(parse_json(raw), source=raw))

        print(f"{name:>5}: decode + accept {_best(server):5.2f} us/event; GenerateEvents of 500 "
              f"{_best(servicer):5.2f} us/event; gateway JSON -> wire {_best(gateway):5.2f} "
              "us/event")

if __name__ == "__main__":
    main()
