"""Issue 12 finding 4: over-size is 413 (431 for headers) and RESOURCE_EXHAUSTED with
reason TOO_LARGE, never a retry hint; a client that writes its whole body before reading
gets that answer, not a connection reset (docs/reliability.md)."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from urllib.parse import urlsplit

import grpc
import pytest
from sqlalchemy import text

from eventflow.v1 import events_pb2, events_pb2_grpc
from tests.support import Stack, basic, grpc_reason

JSON = {"Content-Type": "application/json"}


async def _events(stack: Stack) -> int:
    async with stack.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM events"))).scalar_one())


@pytest.mark.parametrize("headers,name", [
    ({"Authorization": basic("k" * 100_000)}, "Authorization"),
    ({"x-api-key": "k" * 20_000}, "x-api-key"),
    ({"x-api-key": "k" * 4097}, "x-api-key")], ids=["basic-100KB", "key-20KB", "key-4097"])
@pytest.mark.parametrize("method,route", [("GET", "/api/v1/event-types"),
                                          ("POST", "/api/v2/event"),
                                          ("POST", "/api/v1/contact")])
async def test_long_credential_headers_are_431_without_retry_hint(
        stack: Stack, headers: dict[str, str], name: str, method: str, route: str) -> None:
    """A 100 KB key or a 20 KB x-api-key is 431 naming the header (was 429 + Retry-After)."""
    r = await stack.http.request(method, route, headers={**headers, **JSON},
                                 content=b'{"eventTypeKey":"t","keyValue":"k"}')
    assert r.status_code == 431, r.text
    assert "retry-after" not in r.headers
    assert r.json()["error"].startswith(f"the {name} header is ")


async def test_grpc_keys_past_the_limit_are_too_large_every_time(stack: Stack) -> None:
    """Over gRPC a key past 4 KiB is RESOURCE_EXHAUSTED / TOO_LARGE on every call (gRPC's
    own soft limit refused 8-16 KiB of metadata at random, without a reason)."""
    stub = events_pb2_grpc.EventServiceStub(stack.channel)
    for size in (4097, 9000, 12000, 15000):
        for _ in range(4):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ListEventTypes(events_pb2.ListEventTypesRequest(),
                                          metadata=(("x-api-key", "k" * size),))
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, size
            assert grpc_reason(caught.value) == "TOO_LARGE", caught.value.details()


async def test_past_events_of_almost_ten_megabytes_are_accepted(stack: Stack) -> None:
    """500 valid events of 19 KB (9.5 MB) are all accepted (those past the account's
    rate-limit bucket, charged per event, are RATE_LIMITED with Retry-After and accepted
    when sent again); past 500 x 20 KB is 413."""
    item = ('{"eventTypeKey":"bulk_past","keyValue":"k","occurred":"%s",'
            '"params":[{"name":"a","value":"%s"}]}')
    day = datetime.now(UTC).strftime("%Y-%m-%d")  # within the past window
    big = ("[" + ",".join([item % (day, "v" * 19_000)] * 500) + "]").encode()
    assert 9_400_000 < len(big) < 500 * 20480
    await stack.segmentation_on("bulk_past")  # past events of a type that is off are refused
    before = await _events(stack)
    r = await stack.http.post("/api/v2/past_events", content=big,
                              headers={**stack.auth(), **JSON}, timeout=120)
    assert r.status_code == 200, r.text[:300]
    statuses = [x["status"] for x in r.json()["results"]]
    assert set(statuses) <= {"ACCEPTED", "RATE_LIMITED"}
    limited = statuses.count("RATE_LIMITED")
    if limited:
        await asyncio.sleep(int(r.headers["Retry-After"]))
        again = ("[" + ",".join([item % (day, "v" * 19_000)] * limited) + "]").encode()
        r = await stack.http.post("/api/v2/past_events", content=again,
                                  headers={**stack.auth(), **JSON}, timeout=120)
        assert r.json()["successCount"] == limited
    assert await _events(stack) == before + 500
    over = ("[" + ",".join([item % (day, "v" * 20_400)] * 500) + "]").encode()
    r = await stack.http.post("/api/v2/past_events", content=over,
                              headers={**stack.auth(), **JSON}, timeout=120)
    assert r.status_code == 413 and "retry-after" not in r.headers
    assert "500 x EVENTFLOW_MAX_EVENT_BYTES" in r.json()["error"]


def _answer(url: str, head: bytes, chunks: list[bytes]) -> tuple[str, bytes]:
    """Send ``head`` and every chunk before reading anything (as urllib does), then read
    the answer: ("ok", the status line) or ("reset"/"error", what went wrong)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        try:
            sock.sendall(head)
            for chunk in chunks:
                sock.sendall(chunk)
            answer = b""
            while b"\r\n\r\n" not in answer:
                got = sock.recv(65536)
                if not got:
                    break
                answer += got
        except ConnectionResetError as exc:
            return "reset", str(exc).encode()
        except OSError as exc:
            return "error", str(exc).encode()
    return ("ok", answer.split(b"\r\n")[0]) if answer else ("closed", b"")


def _event_body(size: int) -> bytes:
    return (b'{"eventTypeKey":"big","keyValue":"k","params":[{"name":"a","value":"'
            + b"v" * size + b'"}]}')


@pytest.mark.parametrize("size", [1_000_000, 10_000_000, 30_000_000])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_over_size_bodies_are_413_for_clients_that_write_first(
        stack: Stack, size: int, framing: str) -> None:
    """A 1, 10 or 30 MB event body sent whole before reading, with Connection: close, gets
    its 413 (a 10 MB one got a connection reset)."""
    body = _event_body(size)
    head = (f"POST /api/v2/event HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
            f"Authorization: {stack.auth()['Authorization']}\r\n"
            "Content-Type: application/json\r\n").encode()
    if framing == "chunked":
        head += b"Transfer-Encoding: chunked\r\n\r\n"
        step = 1 << 20
        chunks = [b"%x\r\n%s\r\n" % (len(body[i:i + step]), body[i:i + step])
                  for i in range(0, len(body), step)] + [b"0\r\n\r\n"]
    else:
        head += f"Content-Length: {len(body)}\r\n\r\n".encode()
        chunks = [body]
    before = await _events(stack)
    outcome = await asyncio.to_thread(_answer, stack.http_url, head, chunks)
    assert outcome == ("ok", b"HTTP/1.1 413 Request Entity Too Large"), outcome
    assert await _events(stack) == before


async def test_a_client_waiting_for_100_continue_is_answered_at_once(stack: Stack) -> None:
    """``Expect: 100-continue`` with 10 MB declared: the 413 comes before any body is sent."""
    head = (f"POST /api/v2/event HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\n"
            f"Authorization: {stack.auth()['Authorization']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n").encode()
    outcome = await asyncio.to_thread(_answer, stack.http_url, head, [])
    assert outcome == ("ok", b"HTTP/1.1 413 Request Entity Too Large"), outcome


async def test_early_answers_keep_keep_alive_for_bodyless_requests(stack: Stack) -> None:
    """Only an answer that leaves a body unread closes the connection: GETs and read
    bodies keep it open."""
    r = await stack.http.get("/api/v1/event-types", headers=stack.auth())
    assert r.status_code == 200 and "connection" not in r.headers
    r = await stack.http.get("/api/v1/nothing-here", headers=stack.auth())
    assert r.status_code == 404 and "connection" not in r.headers
    r = await stack.http.post("/api/v2/event", content=b'{"eventTypeKey": ',
                              headers={**stack.auth(), **JSON})
    assert r.status_code == 400 and "connection" not in r.headers  # read whole: kept open
    r = await stack.http.post("/api/v2/event", content=_event_body(300_000),
                              headers={**stack.auth(), **JSON})
    assert r.status_code == 413 and r.headers["connection"] == "close"


def _wide_event(params: int) -> events_pb2.GenerateEventRequest:
    return events_pb2.GenerateEventRequest(event_type_key="wide", key_value="k", params=[
        events_pb2.EventParam(name=f"p{i}", value={"number_value": 1}) for i in range(params)])


async def test_a_stream_message_past_the_wire_bound_ends_the_stream_as_too_large(
        stack: Stack) -> None:
    """A StreamEvents message over 8 x EVENTFLOW_MAX_EVENT_BYTES + 64 KiB is refused
    unparsed: the message before it is answered, then RESOURCE_EXHAUSTED / TOO_LARGE
    naming requests[1] and the setting."""
    stub = events_pb2_grpc.EventServiceStub(stack.channel)
    requests = [events_pb2.StreamEventsRequest(client_ref="small", event=_wide_event(1)),
                events_pb2.StreamEventsRequest(client_ref="huge", event=_wide_event(20_000))]
    assert requests[1].ByteSize() > 8 * stack.settings.max_event_bytes + 65536
    call = stub.StreamEvents(iter(requests), metadata=stack.meta(), timeout=10)
    refs = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for reply in call:
            refs.append(reply.client_ref)
    assert refs == ["small"]
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert grpc_reason(caught.value) == "TOO_LARGE"
    assert "requests[1]" in (caught.value.details() or "")
    assert "EVENTFLOW_MAX_EVENT_BYTES" in (caught.value.details() or "")


async def test_a_batch_of_501_events_is_still_invalid_argument(stack: Stack) -> None:
    """More than 500 events in a GenerateEvents stays INVALID_ARGUMENT saying at most 500
    (now counted on the wire, before the batch is parsed)."""
    stub = events_pb2_grpc.EventServiceStub(stack.channel)
    batch = events_pb2.GenerateEventsRequest(events=[_wide_event(0)] * 501)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateEvents(batch, metadata=stack.meta(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 500" in (caught.value.details() or "")
