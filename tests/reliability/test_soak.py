"""Memory soak: mixed traffic, hostile bodies included, for ``SOAK_SECONDS`` (75 in the
suite; ``make soak`` runs 600), with the resident memory of every process of the
deployment (server parent, serving processes, ingest writer, render processes, gateway,
worker) sampled each second. Each must stay under ``RSS_BOUND_MIB``, and what a process
gained in the second half of the run is bounded too (a leak grows steadily; a warm-up
does not). Figures: ``make soak`` or ``make test-reliability PYTEST_ARGS='-k soak -s'``.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from eventflow.v1 import events_pb2, events_pb2_grpc
from tests.reliability.outage import counts, descendants, process_name, rss_kib, worker
from tests.reliability.procs import Procs, running
from tests.support import Backends, basic, private_backends

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "75"))
# Per process. The largest in a 10-minute run on the development machine was far below.
RSS_BOUND_MIB = 400
# What a process may gain between the middle and the end of the run.
GROWTH_BOUND_MIB = 64


@pytest.fixture
def deployment(backends: Backends, tmp_path: Path) -> Iterator[tuple[Procs, list[int]]]:
    own = private_backends(backends, tmp_path)
    try:
        with running(own, tmp_path / "data", EVENTFLOW_RATE_LIMIT="0") as procs, \
                worker(procs) as w:
            yield procs, [w.pid]
    finally:
        own.close()


def _hostile() -> list[tuple[str, str, dict[str, str], bytes]]:
    """(method, path, extra headers, body): each answered 4xx, never stored."""
    deep = b'{"eventTypeKey":"x","keyValue":"k","params":[{"name":"a","value":' + \
        b"[" * 3000 + b"]" * 3000 + b"}]}"
    huge = json.dumps({"eventTypeKey": "x", "keyValue": "k",
                       "params": [{"name": "a", "value": "x" * 200_000}]}).encode()
    many = json.dumps([{"firstName": "x", "channels": []}] * 5000).encode()
    return [
        ("POST", "/api/v2/event", {}, deep),
        ("POST", "/api/v2/event", {}, huge),
        ("POST", "/api/v2/event", {}, b'{"eventTypeKey": "x", "keyValue": '),
        ("POST", "/api/v2/event", {}, b'{"eventTypeKey": "\xff\xfe", "keyValue": "k"}'),
        ("POST", "/api/v2/event", {"Content-Type": "application/json; charset=utf-16"},
         b'{"eventTypeKey": "x", "keyValue": "k"}'),
        ("POST", "/api/v2/event", {"x-api-key": "k" * 20_000}, b"{}"),
        ("POST", "/api/v1/contacts", {}, b'{"contacts": ' + many + b"}"),
        ("POST", "/api/v1/contact", {}, b'{"firstName": ' + b"[" * 1000 + b"]" * 1000 + b"}"),
        ("GET", "/api/v1/events/%C2%B2", {}, b""),
        ("GET", "/api/v1/events?since=0001-01-01T00:00:00%2B01:00", {}, b""),
        ("POST", "/api/v1/messages/preview", {},
         json.dumps({"template": "#set($s = 'ab')#foreach($i in [1..27])"
                                 "#set($s = $s.concat($s))#end$s.length()",
                     "context": {}}).encode()),
        ("POST", "/api/v1/messages/preview", {},
         json.dumps({"template": "$data.s.matches('(a|a)*b')",
                     "context": {"data": {"s": "a" * 26}}}).encode()),
    ]


class Traffic:
    def __init__(self, procs: Procs) -> None:
        self.procs = procs
        self.sent = 0
        self.acked: list[int] = []
        self.answers: dict[str, int] = {}
        self.hostile_5xx: list[str] = []
        self.odd: list[str] = []

    def count(self, what: str) -> None:
        self.answers[what] = self.answers.get(what, 0) + 1

    async def events(self, stop: asyncio.Event, n: int) -> None:
        auth = {"Authorization": basic(self.procs.api_key)}
        async with httpx.AsyncClient(base_url=self.procs.http_url, timeout=30) as http:
            i = 0
            while not stop.is_set():
                i += 1
                self.sent += 1
                r = await http.post("/api/v2/event", headers=auth, json={
                    "eventTypeKey": "soak", "keyValue": f"s{n}-{i}@soak.example",
                    "params": [{"name": "items", "value": {"array": [
                        {"name": secrets.token_hex(8), "price": i}] * 5}}]})
                self.count(f"event {r.status_code}")
                if r.status_code == 200:
                    self.acked.append(int(r.headers["X-Event-Id"]))

    async def batches(self, stop: asyncio.Event) -> None:
        async with grpc.aio.insecure_channel(self.procs.grpc_target) as channel:
            stub = events_pb2_grpc.EventServiceStub(channel)
            i = 0
            while not stop.is_set():
                i += 1
                reqs = [events_pb2.GenerateEventRequest(event_type_key="soak_batch",
                                                        key_value=f"b{i}-{j}")
                        for j in range(50)]
                self.sent += len(reqs)
                reply = await stub.GenerateEvents(events_pb2.GenerateEventsRequest(events=reqs),
                                                  metadata=(("x-api-key", self.procs.api_key),))
                self.acked += [r.event_id for r in reply.results if r.status == "ACCEPTED"]
                self.count("batch OK")
                await asyncio.sleep(0.2)

    async def reads(self, stop: asyncio.Event) -> None:
        auth = {"Authorization": basic(self.procs.other_key)}
        async with httpx.AsyncClient(base_url=self.procs.http_url, timeout=30) as http:
            i = 0
            while not stop.is_set():
                i += 1
                r = await http.post("/api/v1/contact", headers=auth, json={
                    "firstName": "Soak", "channels": [{"type": "email",
                                                        "value": f"c{i}@other.example"}]})
                self.count(f"contact {r.status_code}")
                if r.status_code != 200 and len(self.odd) < 3:
                    self.odd.append(r.text[:200])
                for path in ("/api/v1/events?pageSize=50", "/api/v1/event-types",
                             "/api/v1/contacts?maxrows=50"):
                    r = await http.get(path, headers=auth)
                    self.count(f"read {r.status_code}")

    async def hostile(self, stop: asyncio.Event) -> None:
        bodies = _hostile()
        async with httpx.AsyncClient(base_url=self.procs.http_url, timeout=60) as http:
            i = 0
            while not stop.is_set():
                method, path, extra, body = bodies[i % len(bodies)]
                i += 1
                headers = {"Authorization": basic(self.procs.other_key),
                           "Content-Type": "application/json", **extra}
                try:
                    r = await http.request(method, path, headers=headers, content=body)
                except httpx.HTTPError as exc:
                    self.count(f"hostile {type(exc).__name__}")
                    continue
                self.count(f"hostile {r.status_code}")
                if r.status_code >= 500:
                    self.hostile_5xx.append(f"{method} {path} {r.status_code} {r.text[:120]}")


async def _sample(pids: Callable[[], list[int]], samples: dict[str, list[tuple[float, int]]],
                  stop: asyncio.Event, started: float) -> None:
    while not stop.is_set():
        for pid in pids():
            kib = rss_kib(pid)
            if kib:
                samples.setdefault(f"{process_name(pid)} [{pid}]", []).append(
                    (time.monotonic() - started, kib))
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


def _mib(kib: int) -> float:
    return kib / 1024


async def test_memory_stays_bounded_under_mixed_traffic(
        deployment: tuple[Procs, list[int]]) -> None:
    """Valid events (HTTP and batches), contact writes and reads, and hostile bodies
    (nesting, over-size, broken JSON and UTF-8, huge headers, hostile templates, oversized
    bulks) for SOAK_SECONDS: no 5xx to any of them, every acknowledged event stored, and
    every process's RSS under RSS_BOUND_MIB and not growing by more than GROWTH_BOUND_MIB
    in the second half."""
    procs, others = deployment
    assert procs.server is not None and procs.gateway is not None
    server_pid, gateway_pid = procs.server.pid, procs.gateway.pid

    def pids() -> list[int]:
        return descendants(server_pid) + [gateway_pid] + \
            [p for w in others for p in descendants(w)]

    traffic = Traffic(procs)
    samples: dict[str, list[tuple[float, int]]] = {}
    stop, stop_sampling = asyncio.Event(), asyncio.Event()
    started = time.monotonic()
    sampler = asyncio.create_task(_sample(pids, samples, stop_sampling, started))
    jobs: list[Awaitable[None]] = [traffic.events(stop, n) for n in range(3)]
    jobs += [traffic.batches(stop), traffic.reads(stop), traffic.hostile(stop),
             traffic.hostile(stop)]
    runner = asyncio.gather(*jobs)
    await asyncio.sleep(SOAK_SECONDS)
    stop.set()
    await runner
    await asyncio.sleep(1.5)
    stop_sampling.set()
    await sampler
    c = await counts(procs.settings, traffic.acked)
    rows = []
    for name, series in sorted(samples.items()):
        values = [kib for _, kib in series]
        half = [kib for t, kib in series if t >= SOAK_SECONDS / 2]
        rows.append((name, _mib(values[0]), _mib(max(values)), _mib(values[-1]),
                     _mib(max(half) - min(half)) if half else 0.0, len(series)))
    print(f"\nsoak {SOAK_SECONDS:.0f} s: sent {traffic.sent}, acked {len(traffic.acked)}, "
          f"stored {c.stored}, processed {c.processed}; answers {traffic.answers} {traffic.odd}")
    print(f"{'process':<48} {'first':>8} {'max':>8} {'last':>8} {'2nd-half':>9} samples (MiB)")
    for name, first, peak, last, growth, n in rows:
        print(f"{name:<48} {first:8.1f} {peak:8.1f} {last:8.1f} {growth:9.1f} {n}")
    out = os.environ.get("SOAK_REPORT")
    if out:
        Path(out).write_text(json.dumps({"seconds": SOAK_SECONDS, "sent": traffic.sent,
                                         "acked": len(traffic.acked), "stored": c.stored,
                                         "processed": c.processed, "answers": traffic.answers,
                                         "rss_kib": samples}, indent=1))
    assert not traffic.hostile_5xx, traffic.hostile_5xx[:5]
    assert not any(k.split()[-1].startswith("5") for k in traffic.answers), traffic.answers
    assert all(k.split()[-1] in ("200", "OK") for k in traffic.answers
               if not k.startswith("hostile")), (traffic.answers, traffic.odd)
    assert c.stored == len(traffic.acked) == len(set(traffic.acked))
    assert rows
    for name, _first, peak, _last, growth, _n in rows:
        assert peak < RSS_BOUND_MIB, f"{name} reached {peak:.0f} MiB"
        assert growth < GROWTH_BOUND_MIB, f"{name} grew {growth:.0f} MiB in the second half"
