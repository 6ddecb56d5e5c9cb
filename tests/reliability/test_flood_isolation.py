"""Scenario 18 (issue 12, findings 1 and 8): while one account floods the deployment with
each hostile action of the issue, another account's cheap calls, over HTTP and gRPC, keep
their p99 within the bound, and every hostile call ends in its proper refusal."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import grpc
import httpx
import pytest

from eventflow.v1 import events_pb2, events_pb2_grpc
from tests.reliability import hostile, latency
from tests.reliability.procs import Procs

PREVIEW = "/api/v1/messages/preview"
DEADLINE = 30.0  # every hostile call's; a refusal takes well under a second
# The issue asks for 100 ms; 3 x a baseline measured alone follows a loaded machine.
SLOWDOWN = 3.0
SECONDS = 3.0  # each attack runs at least this long while the other account is timed
HOSTILE_PROCESSES = 2  # the most callers of one attack made from processes of their own
EVENT_CALLERS = 8  # batches past the rate limit in flight at once, split among them


@dataclass(frozen=True, slots=True)
class Answer:
    """What one hostile call ended in, and whether that is its proper refusal."""

    proper: bool
    what: str


@dataclass
class Flood:
    """Account A's hostile calls and account B's cheap ones, on their own connections."""

    procs: Procs
    http: httpx.AsyncClient
    channel: grpc.aio.Channel
    other: events_pb2_grpc.EventServiceStub
    pool: ProcessPoolExecutor

    async def preview(self, template: str, context: dict[str, object], expected: str
                      ) -> Answer:
        r = await self.http.post(PREVIEW, headers=self.procs.auth(), timeout=DEADLINE,
                                 json={"template": template, "context": context})
        doc = r.json()
        text = str(doc.get("rendered", doc.get("error")))
        return Answer(r.status_code < 500 and expected in text, f"{r.status_code} {text[:80]}")

    async def elsewhere(self, call: Callable[..., tuple[bool, str]], *args: object) -> Answer:
        """``call(*args)`` (a ``hostile`` function) in a process of the pool: the huge
        bodies cost their sender, and the sender is another client, not the probe's loop."""
        loop = asyncio.get_running_loop()
        proper, what = await loop.run_in_executor(self.pool, call, *args)
        return Answer(proper, what)

    def huge_event(self) -> Awaitable[Answer]:
        return self.elsewhere(hostile.grpc_raw, self.procs.grpc_target, self.procs.api_key,
                              "GenerateEvent", "huge_event")

    def huge_batch(self) -> Awaitable[Answer]:
        """The batch is refused whole before it is parsed: by gRPC on its length (over the
        server's 8 MiB), or by eventflow naming its huge event (within it)."""
        return self.elsewhere(hostile.grpc_raw, self.procs.grpc_target, self.procs.api_key,
                              "GenerateEvents", "huge_batch", "events[1]")

    def bulk(self) -> Awaitable[Answer]:
        return self.elsewhere(hostile.http_post, self.procs.http_url, "/api/v1/contacts",
                              {**self.procs.auth(), "Content-Type": "application/json"},
                              "bulk", 413)

    def events(self) -> Awaitable[Answer]:
        """100 small events a call, from many callers at once: far past the rate limit."""
        return self.elsewhere(hostile.grpc_events, self.procs.grpc_target, self.procs.api_key,
                              EVENT_CALLERS // HOSTILE_PROCESSES)


@pytest.fixture
async def flood(procs: Procs, http: httpx.AsyncClient) -> AsyncIterator[Flood]:
    async with grpc.aio.insecure_channel(procs.grpc_target) as channel, \
            grpc.aio.insecure_channel(procs.grpc_target) as other:
        with ProcessPoolExecutor(HOSTILE_PROCESSES, mp_context=multiprocessing.get_context(
                "spawn"), initializer=hostile.warm) as pool:
            # Every process started and its bodies built before anything is timed.
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(loop.run_in_executor(pool, hostile.ready, 0.5)
                                   for _ in range(HOSTILE_PROCESSES)))
            yield Flood(procs, http, channel, events_pb2_grpc.EventServiceStub(other), pool)


def _attacks(f: Flood) -> dict[str, tuple[str, Callable[[], Awaitable[Answer]], int]]:
    """name -> (its label, one hostile call of account A, how many callers repeat it)."""
    huge, batch, bulk = (len(hostile.huge_event()), len(hostile.huge_batch()),
                         len(hostile.bulk_body()))
    return {
        "regex": ("preview $data.s.matches('(a|a)*b'), 26 a's", lambda: f.preview(
            "$data.s.matches('(a|a)*b')", {"data": {"s": "a" * 26}}, "false"), 2),
        "concat": ("preview $s.concat($s) 27 times", lambda: f.preview(
            "#set($s = 'ab')#foreach($i in [1..27])#set($s = $s.concat($s))#end$s.length()",
            {}, "string longer than"), 2),
        "multiply": ("preview $x * $x 40 times", lambda: f.preview(
            "#set($x = 3)#foreach($i in [1..40])#set($x = $x * $x)#end$x",
            {}, "number wider than"), 2),
        "huge-event": (f"GenerateEvent of {hostile.HUGE_PARAMS} params ({huge} bytes)",
                       f.huge_event, 1),
        "huge-batch": (f"GenerateEvents holding it ({batch} bytes)", f.huge_batch, 1),
        "bulk": (f"bulk contacts ({bulk} bytes)", f.bulk, 2),
        "events": (f"GenerateEvents of 100 events, {EVENT_CALLERS} callers", f.events,
                   HOSTILE_PROCESSES),
    }


NAMES = ["regex", "concat", "multiply", "huge-event", "huge-batch", "bulk", "events"]


@pytest.mark.parametrize("name", NAMES)
async def test_flood_does_not_slow_another_account(flood: Flood, name: str) -> None:
    """While account A repeats one hostile action, account B's GETs and single-event
    GenerateEvents keep p99 under max(100 ms, 3 x B's p99 alone), and A's calls all end in
    their proper refusal within their deadline."""
    label, attack, callers = _attacks(flood)[name]
    turn = itertools.count()
    other_key = flood.procs.other_key
    event = events_pb2.GenerateEventRequest(event_type_key="probe", key_value="b")

    async def other_account_call() -> None:
        if next(turn) % 2:
            r = await flood.http.get("/api/v1/event-types", headers=flood.procs.auth(other_key),
                                     timeout=10)
            assert r.status_code == 200, r.text
        else:
            await flood.other.GenerateEvent(event, timeout=10,
                                            metadata=(("x-api-key", other_key),))

    answers = await latency.assert_isolated(label, other_account_call, attack,
                                            concurrency=callers, seconds=SECONDS,
                                            slowdown=SLOWDOWN, ceiling=latency.P99_CEILING)
    assert answers
    wrong = [a for a in answers if not (isinstance(a, Answer) and a.proper)]
    print(f"{label}: {len(answers)} hostile calls, e.g. {answers[0]}")
    assert not wrong, wrong[:3]
