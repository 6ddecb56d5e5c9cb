"""The load generator, a process of its own: ``python -m bench.load '<json spec>'``.

Spec keys: ``kind`` (unary, batch, stream, http, rate), ``target`` (host:port, or the
base URL for http), ``api_key``, ``concurrency``, ``seconds``, ``warmup``, ``batch``
(events per GenerateEvents call), ``rate`` (offered events/s). It prints one JSON object:
events and calls per second over the measured window, latency percentiles, errors.
"""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Self

import grpc
import orjson

from bench.payloads import body_bytes, kb_body, request
from eventflow.v1 import events_pb2, events_pb2_grpc


@dataclass
class Meter:
    """Counts completions inside the measured window only (after warm-up, before the end)."""

    start: float
    end: float
    events: int = 0
    calls: int = 0
    errors: int = 0
    first_error: str = ""
    latencies: list[float] = field(default_factory=list)

    def done(self, t0: float, n_events: int) -> None:
        now = time.perf_counter()
        if self.start <= now <= self.end:
            self.events += n_events
            self.calls += 1
            self.latencies.append(now - t0)

    def failed(self, exc: BaseException) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = f"{type(exc).__name__}: {exc}"[:300]

    def running(self) -> bool:
        return time.perf_counter() < self.end

    def summary(self) -> dict[str, Any]:
        span = self.end - self.start
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else None

        return {"events_per_s": round(self.events / span, 1), "calls_per_s": round(self.calls / span, 1),
                "events": self.events, "calls": self.calls, "seconds": round(span, 2),
                "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0),
                "errors": self.errors, "first_error": self.first_error}


def _meter(spec: dict[str, Any]) -> Meter:
    now = time.perf_counter()
    start = now + float(spec.get("warmup", 1.0))
    return Meter(start=start, end=start + float(spec.get("seconds", 3.0)))


def _metadata(spec: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    token = base64.b64encode(f"bench:{spec.get('api_key', '')}".encode()).decode()
    return (("authorization", "Basic " + token),)


class _Stubs:
    """Several connections, as several clients would open: SO_REUSEPORT spreads connections
    (not calls) over the server's processes, so one channel would load only one of them."""

    def __init__(self, spec: dict[str, Any], options: list[tuple[str, Any]] | None = None) -> None:
        n = int(spec.get("connections", 4))
        opts = [("grpc.use_local_subchannel_pool", 1), *(options or [])]
        self.channels = [grpc.aio.insecure_channel(spec["target"], options=opts)
                         for _ in range(n)]
        self.stubs = [events_pb2_grpc.EventServiceStub(c) for c in self.channels]
        self._next = 0

    def pick(self) -> events_pb2_grpc.EventServiceStub:
        self._next = (self._next + 1) % len(self.stubs)
        return self.stubs[self._next]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for c in self.channels:
            await c.close()


async def _grpc_unary(spec: dict[str, Any], m: Meter) -> None:
    async with _Stubs(spec) as stubs:
        req, meta = request(kb_body()), _metadata(spec)

        async def worker() -> None:
            stub = stubs.pick()
            while m.running():
                t0 = time.perf_counter()
                try:
                    await stub.GenerateEvent(req, metadata=meta)
                except grpc.aio.AioRpcError as exc:
                    m.failed(exc)
                    continue
                m.done(t0, 1)

        await asyncio.gather(*(worker() for _ in range(int(spec["concurrency"]))))


async def _grpc_batch(spec: dict[str, Any], m: Meter) -> None:
    size = int(spec.get("batch", 500))
    async with _Stubs(spec, [("grpc.max_receive_message_length", 32 << 20),
                             ("grpc.max_send_message_length", 32 << 20)]) as stubs:
        req = events_pb2.GenerateEventsRequest(events=[request(kb_body(i)) for i in range(size)])
        meta = _metadata(spec)

        async def worker() -> None:
            stub = stubs.pick()
            while m.running():
                t0 = time.perf_counter()
                try:
                    reply = await stub.GenerateEvents(req, metadata=meta)
                except grpc.aio.AioRpcError as exc:
                    m.failed(exc)
                    continue
                m.done(t0, reply.success_count)

        await asyncio.gather(*(worker() for _ in range(int(spec["concurrency"]))))


async def _grpc_stream(spec: dict[str, Any], m: Meter) -> None:
    """One stream per ``concurrency``, each with up to ``window`` unacknowledged events."""
    window = int(spec.get("window", 256))
    async with _Stubs(spec) as stubs:
        event, meta = request(kb_body()), _metadata(spec)

        async def one_stream() -> None:
            call = stubs.pick().StreamEvents(metadata=meta)
            credits = asyncio.Semaphore(window)
            sent: dict[str, float] = {}

            async def writer() -> None:
                n = 0
                while m.running():
                    await credits.acquire()
                    ref = str(n)
                    n += 1
                    sent[ref] = time.perf_counter()
                    await call.write(events_pb2.StreamEventsRequest(client_ref=ref, event=event))
                await call.done_writing()

            w = asyncio.create_task(writer())
            try:
                async for ack in call:
                    credits.release()
                    t0 = sent.pop(ack.client_ref)
                    if ack.result.status == "ACCEPTED":
                        m.done(t0, 1)
                    else:
                        m.failed(RuntimeError(ack.result.status))
            except grpc.aio.AioRpcError as exc:
                m.failed(exc)
            await w

        await asyncio.gather(*(one_stream() for _ in range(int(spec["concurrency"]))))


async def _grpc_rate(spec: dict[str, Any], m: Meter) -> None:
    """Open loop: calls start on a fixed schedule, latency counted from the planned start."""
    rate = float(spec["rate"])
    async with _Stubs(spec) as stubs:
        req, meta = request(kb_body()), _metadata(spec)
        tasks: set[asyncio.Task[None]] = set()

        async def one(planned: float) -> None:
            try:
                await stubs.pick().GenerateEvent(req, metadata=meta)
            except grpc.aio.AioRpcError as exc:
                m.failed(exc)
                return
            m.done(planned, 1)

        begin = time.perf_counter()
        sent = 0
        while m.running():
            due = int((time.perf_counter() - begin) * rate)
            while sent < due:
                planned = begin + sent / rate
                task = asyncio.create_task(one(planned))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(0.0005)
        await asyncio.gather(*tasks)


class _HttpConn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with one request in flight."""

    def __init__(self) -> None:
        self.buf = b""
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0 or self.waiter is None:
            return
        head = self.buf[:head_end].lower()
        length = 0
        at = head.find(b"content-length:")
        if at >= 0:
            length = int(head[at + 15:head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
        total = head_end + 4 + length
        if len(self.buf) >= total:
            status = int(self.buf[9:12])
            self.buf = self.buf[total:]
            waiter, self.waiter = self.waiter, None
            waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    async def send(self, raw: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


async def _http(spec: dict[str, Any], m: Meter) -> None:
    host_port = spec["target"].split("://", 1)[-1].rstrip("/")
    host, port = host_port.rsplit(":", 1)
    body = body_bytes(kb_body())
    auth = base64.b64encode(f"bench:{spec.get('api_key', '')}".encode()).decode()
    raw = (f"POST {spec.get('path', '/api/v2/event')} HTTP/1.1\r\nHost: {host_port}\r\n"
           f"Authorization: Basic {auth}\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        _, conn = await loop.create_connection(_HttpConn, host, int(port))
        while m.running():
            t0 = time.perf_counter()
            try:
                status = await conn.send(raw)
            except ConnectionError as exc:
                m.failed(exc)
                return
            if status == 200:
                m.done(t0, 1)
            else:
                m.failed(RuntimeError(f"HTTP {status}"))
        assert conn.transport is not None
        conn.transport.close()

    await asyncio.gather(*(worker() for _ in range(int(spec["concurrency"]))))


KINDS = {"unary": _grpc_unary, "batch": _grpc_batch, "stream": _grpc_stream,
         "rate": _grpc_rate, "http": _http}


async def _own_cpu(m: Meter) -> float:
    """This process's CPU over the measured window, in cores."""
    await asyncio.sleep(max(0.0, m.start - time.perf_counter()))
    t0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.sleep(max(0.0, m.end - time.perf_counter()))
    return (time.process_time() - cpu0) / max(1e-9, time.perf_counter() - t0)


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    m = _meter(spec)
    cpu = asyncio.create_task(_own_cpu(m))
    await KINDS[spec["kind"]](spec, m)
    return {**m.summary(), "loadgen_cores_busy": round(await cpu, 2)}


def main() -> None:
    spec = orjson.loads(sys.argv[1])
    if spec.get("uvloop", True):
        from server.app import install_event_loop

        install_event_loop()
    print(orjson.dumps(asyncio.run(run(spec))).decode(), flush=True)


if __name__ == "__main__":
    main()
