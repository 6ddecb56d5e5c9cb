"""One acceptance pipeline: the same events get the same verdict and the same message
through every entry point.

Each case goes through GenerateEvent, GenerateEvents and StreamEvents (a real server on
port 0) and through POST /api/v2/event and /api/v2/past_events (a real gateway over HTTP).
Where an entry point's contract differs, the mapping is asserted as such: /api/v2/event
answers HTTP status codes and has no ``occurred`` (an event there is live), past_events
requires ``occurred`` (a case without one gets yesterday, and the case that leaves it out
on purpose is refused there alone). The cases' types have segmentation on, except
``OFF``'s: its past events are refused with EVENT_SEGMENTATION_DISABLED, its live ones
accepted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from eventflow.v1 import event_types_pb2, event_types_pb2_grpc, events_pb2, events_pb2_grpc
from server.codec import results
from server.codec.values import build_value
from server.errors import (
    InvalidArgument,
    NotFound,
    OccurredError,
    RateLimited,
    SegmentationDisabled,
    TooLarge,
    Violation,
)
from tests.support import (
    Backends,
    Stack,
    grpc_reason,
    grpc_violations,
    start_gateway,
    start_stack,
)

Violations = tuple[tuple[str, str], ...]
Verdict = tuple[str, Violations]
STATUSES = set(events_pb2.EventResult.Status.keys()) - {"STATUS_UNSPECIFIED"}
ENTRY_POINTS = ("GenerateEvent", "GenerateEvents", "StreamEvents", "/api/v2/event",
                "/api/v2/past_events")

# A call that takes longer is a hang: the test fails there and names the call.
CALL_LIMIT = 60


@dataclass(frozen=True)
class Case:
    name: str
    body: dict[str, Any]
    status: str
    # The first violation's field and a part of its message (None for ACCEPTED).
    field: str | None = None
    fragment: str = ""
    occurred: timedelta | None = None  # from now; gRPC and past_events carry it
    # How /api/v2/event and /api/v2/past_events answer where their contract differs.
    http_status: str | None = None
    past_status: str | None = None


def _event(key: str, *params: tuple[str, Any], type_key: str = "matrix") -> dict[str, Any]:
    body: dict[str, Any] = {"eventTypeKey": type_key, "params": [
        {"name": n, "value": v} for n, v in params]}
    if key:
        body["keyValue"] = key
    return body


RULED = "matrix_ruled"
OFF = "matrix_off"  # segmentation never switched on
SEGMENTED = ("matrix", RULED)
GOOD_CONTACT = {"firstname": "Ivan", "sms": "+380501234567"}
BAD_CONTACT = {"firstname": "Ivan", "sms": "12ab"}
TEN_YEARS = timedelta(days=3653)
DEEP: Any = 1
for _ in range(30):
    DEEP = [DEEP]

CASES = [
    Case("good", _event("m1", ("n", 1), ("s", "x")), "ACCEPTED"),
    Case("good contactJson", _event("m2", ("contactJson", GOOD_CONTACT)), "ACCEPTED"),
    Case("key from email", _event("", ("email", "m3@example.com")), "ACCEPTED"),
    Case("occurred in window", _event("m4", ("n", 1)), "ACCEPTED", occurred=-timedelta(days=3)),
    Case("no occurred", _event("m5"), "ACCEPTED", past_status="OCCURRED_DATE_IS_REQUIRED"),
    Case("occurred ten years ago", _event("m6"), "OCCURRED_TIME_TOO_DEPTH", "occurred",
         "OCCURRED_TIME_TOO_DEPTH", occurred=-TEN_YEARS, http_status="ACCEPTED"),
    Case("occurred in the future", _event("m7"), "OCCURRED_TIME_IN_FUTURE", "occurred",
         "OCCURRED_TIME_IN_FUTURE", occurred=timedelta(days=3), http_status="ACCEPTED"),
    Case("over-size", _event("m8", ("big", "a" * 30000)), "TOO_LARGE", "event",
         "; the limit is 20480 (raise EVENTFLOW_MAX_EVENT_BYTES"),
    Case("bad contactJson", _event("m9", ("contactJson", BAD_CONTACT)), "INVALID",
         "contactJson.sms", "not a phone number in international format"),
    Case("forbidden characters", _event("m10", type_key="matrix|bad?"), "INVALID",
         "eventTypeKey", "contains the forbidden character(s) ? |"),
    Case("missing key", _event("", ("n", 1)), "INVALID", "keyValue",
         "is required when params carry none of contactId"),
    Case("duplicate param names", _event("m11", ("a", 1), ("a", 2)), "INVALID",
         "params[1].name", "duplicates the name 'a' of params[0]"),
    Case("too deep", _event("m12", ("deep", DEEP)), "INVALID", "params[0].value",
         "is nested deeper than 24 levels"),
    Case("field rules and contactJson together",
         _event("m13", ("contactJson", BAD_CONTACT), type_key="matrix|bad"), "INVALID",
         "eventTypeKey", "forbidden character(s) |"),
    Case("field rules before the past window", _event("m14", type_key="bad|old"), "INVALID",
         "eventTypeKey", "forbidden", occurred=-TEN_YEARS),
    Case("contactJson before size", _event("m15", ("contactJson", BAD_CONTACT),
                                           ("big", "a" * 30000)),
         "INVALID", "contactJson.sms", "not a phone number"),
    # The type's "Validate parameters" (set up by the test: orderId required, coupon not).
    Case("required param missing", _event("m16", ("coupon", "X"), type_key=RULED), "INVALID",
         "params", f"has no 'orderId', a required param; event type '{RULED}' expects "
         '{"params":[{"name":"orderId","required":true},{"name":"coupon","required":false}]}'),
    Case("required param null", _event("m17", ("orderId", None), type_key=RULED), "INVALID",
         "params", "has no 'orderId'"),
    Case("required param present", _event("m18", ("orderId", "A-1"), type_key=RULED),
         "ACCEPTED"),
    Case("field rules and required params together", _event("", type_key=RULED), "INVALID",
         "keyValue", "is required"),
    Case("required params before size", _event("m19", ("big", "a" * 30000), type_key=RULED),
         "INVALID", "params", "has no 'orderId'"),
    # Segmentation, for past events only: after the past window, before size.
    Case("past event, segmentation off", _event("m20", ("n", 1), type_key=OFF),
         "EVENT_SEGMENTATION_DISABLED", "eventTypeKey",
         f"EVENT_SEGMENTATION_DISABLED: event type '{OFF}' has segmentation off",
         occurred=-timedelta(days=3), http_status="ACCEPTED"),
    Case("live event, segmentation off", _event("m21", type_key=OFF), "ACCEPTED",
         past_status="EVENT_SEGMENTATION_DISABLED"),
    Case("field rules before segmentation", _event("", type_key=OFF), "INVALID", "keyValue",
         "is required", occurred=-timedelta(days=3)),
    Case("past window before segmentation", _event("m22", type_key=OFF),
         "OCCURRED_TIME_TOO_DEPTH", "occurred", "OCCURRED_TIME_TOO_DEPTH",
         occurred=-TEN_YEARS, http_status="ACCEPTED"),
    Case("segmentation before size", _event("m23", ("big", "a" * 30000), type_key=OFF),
         "EVENT_SEGMENTATION_DISABLED", "eventTypeKey", "has segmentation off",
         occurred=-timedelta(days=3), http_status="TOO_LARGE"),
]
RULES = [("orderId", True), ("coupon", False)]


def _request(case: Case, now: datetime) -> events_pb2.GenerateEventRequest:
    """The case as a client builds it, with protobuf's own setters."""
    body = case.body
    req = events_pb2.GenerateEventRequest(event_type_key=body["eventTypeKey"],
                                          key_value=body.get("keyValue", ""))
    for p in body["params"]:
        build_value(p["value"], req.params.add(name=p["name"]).value)
    if case.occurred is not None:
        req.occurred.FromDatetime(now + case.occurred)
    return req


def _of_result(result: events_pb2.EventResult) -> Verdict:
    return result.status, tuple((v.field, v.description) for v in result.violations)


def _of_rpc_error(err: grpc.aio.AioRpcError) -> Verdict:
    """GenerateEvent's contract: a refused event is the call's error. INVALID_ARGUMENT
    with the violations (an ``occurred`` refusal: one violation of ``occurred`` whose
    message is the status; segmentation off: ErrorInfo reason SEGMENTATION_DISABLED and
    its status in the metadata); RESOURCE_EXHAUSTED with ErrorInfo reason TOO_LARGE or
    RATE_LIMITED and the message as details."""
    violations = tuple(grpc_violations(err))
    if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
        if len(violations) == 1 and violations[0][0] == "occurred":
            return violations[0][1], violations
        if grpc_reason(err) == "SEGMENTATION_DISABLED":
            return "EVENT_SEGMENTATION_DISABLED", violations
        return "INVALID", violations
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
    reason = grpc_reason(err)
    assert reason in ("TOO_LARGE", "RATE_LIMITED") and not violations, (reason, violations)
    return reason, (("event", err.details() or ""),)


def _of_http(r: httpx.Response) -> Verdict:
    """/api/v2/event's contract: 200 stored; 400 with the violations; 413 over-size and
    429 rate limited, each with the message as ``error`` and no violations."""
    if r.status_code == 200:
        assert r.content == b"" and int(r.headers["X-Event-Id"]) > 0
        return "ACCEPTED", ()
    doc = r.json()
    violations = tuple((v["field"], v["message"]) for v in doc["violations"])
    if r.status_code == 400:
        assert doc["error"] == InvalidArgument.from_violations(
            [Violation(f, m) for f, m in violations]).message
        return "INVALID", violations
    assert not violations, doc
    if r.status_code == 429:
        assert r.headers["Retry-After"] == "1"
        return "RATE_LIMITED", (("event", doc["error"]),)
    assert r.status_code == 413, r.text
    assert "Retry-After" not in r.headers
    return "TOO_LARGE", (("event", doc["error"]),)


def _of_past(entry: dict[str, Any], index: int) -> Verdict:
    """past_events' contract: each result's violations name paths into the body."""
    prefix = f"events[{index}]."
    violations = []
    for v in entry.get("violations", []):
        assert v["field"].startswith(prefix), v
        violations.append((v["field"].removeprefix(prefix), v["message"]))
    assert ("eventId" in entry) == (entry["status"] == "ACCEPTED"), entry
    return entry["status"], tuple(violations)


class Gateway:
    """A gateway over real HTTP whose body limit is above the server's, so the server's
    own over-size answer shows (the gateway refuses larger bodies before reading them)."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack

    async def __aenter__(self) -> httpx.AsyncClient:
        settings = self._stack.settings
        self._server, self._task, url = await start_gateway(
            settings.with_(max_event_bytes=settings.max_event_bytes * 4),
            self._stack.grpc_target)
        self._http = httpx.AsyncClient(base_url=url, timeout=30, headers=self._stack.auth())
        return self._http

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()
        self._server.should_exit = True
        await self._task


@pytest.fixture
async def gateway(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with Gateway(stack) as http:
        yield http


async def _stream(stub: events_pb2_grpc.EventServiceStub, requests: list[Any],
                  meta: Any) -> list[events_pb2.EventResult]:
    async def feed() -> AsyncIterator[events_pb2.StreamEventsRequest]:
        for i, req in enumerate(requests):
            yield events_pb2.StreamEventsRequest(client_ref=str(i), event=req)

    acks = [ack async for ack in stub.StreamEvents(feed(), metadata=meta, timeout=CALL_LIMIT)]
    assert [a.client_ref for a in acks] == [str(i) for i in range(len(requests))]
    return [a.result for a in acks]


def _expected(case: Case, entry_point: str) -> str:
    if entry_point == "/api/v2/event" and case.http_status is not None:
        return case.http_status
    if entry_point == "/api/v2/past_events" and case.past_status is not None:
        return case.past_status
    return case.status


async def test_every_entry_point_gives_the_same_verdict(stack: Stack,
                                                        gateway: httpx.AsyncClient) -> None:
    """Good and bad events get one verdict, with the same violations and messages, from
    GenerateEvent, GenerateEvents, StreamEvents, /api/v2/event and /api/v2/past_events;
    what is refused stores nothing."""
    now = datetime.now(UTC)
    stub = events_pb2_grpc.EventServiceStub(stack.channel)
    meta = stack.meta()
    await event_types_pb2_grpc.EventTypeServiceStub(stack.channel).UpdateEventType(
        event_types_pb2.UpdateEventTypeRequest(key=RULED, validate_params=event_types_pb2.ParamRules(
            params=[events_pb2.ParamRule(name=n, required=r) for n, r in RULES])),
        metadata=meta)
    await stack.segmentation_on(*SEGMENTED)
    requests = [_request(case, now) for case in CASES]
    before = await stack.count_events()
    verdicts: dict[str, list[Verdict]] = {name: [] for name in ENTRY_POINTS}
    unary_messages: list[str] = []
    for req in requests:
        try:
            await stub.GenerateEvent(req, metadata=meta)
            verdicts["GenerateEvent"].append(("ACCEPTED", ()))
            unary_messages.append("")
        except grpc.aio.AioRpcError as err:
            verdicts["GenerateEvent"].append(_of_rpc_error(err))
            unary_messages.append(err.details() or "")
    batch = await stub.GenerateEvents(events_pb2.GenerateEventsRequest(events=requests),
                                      metadata=meta)
    verdicts["GenerateEvents"] = [_of_result(r) for r in batch.results]
    verdicts["StreamEvents"] = [_of_result(r) for r in await _stream(stub, requests, meta)]
    http_errors: list[str] = []
    for case in CASES:
        body = dict(case.body)
        if case.occurred is not None:  # not part of /api/v2/event: it stores a live event
            body["occurred"] = (now + case.occurred).strftime("%Y-%m-%dT%H:%M")
        r = await gateway.post("/api/v2/event", json=body)
        verdicts["/api/v2/event"].append(_of_http(r))
        http_errors.append(r.json()["error"] if r.content else "")
    items = []
    for case in CASES:
        item = dict(case.body)
        if case.past_status != "OCCURRED_DATE_IS_REQUIRED":
            moment = now + (case.occurred if case.occurred is not None else -timedelta(days=1))
            item["occurred"] = moment.strftime("%Y-%m-%dT%H:%M")
        items.append(item)
    r = await gateway.post("/api/v2/past_events", json={"events": items})
    assert r.status_code == 200, r.text
    past = r.json()
    verdicts["/api/v2/past_events"] = [_of_past(e, i) for i, e in enumerate(past["results"])]

    stored = 0
    for index, case in enumerate(CASES):
        seen = {name: verdicts[name][index] for name in ENTRY_POINTS}
        for name, (status, violations) in seen.items():
            assert status == _expected(case, name), (case.name, name, seen)
            assert status in STATUSES
            stored += status == "ACCEPTED"
        # The same violations, word for word, wherever the verdict is the case's own
        same = {name: v for name, v in seen.items() if v[0] == case.status}
        assert len(set(same.values())) == 1, (case.name, seen)
        status, violations = next(iter(same.values()))
        if case.status == "ACCEPTED":
            assert violations == (), case.name
            continue
        assert violations[0][0] == case.field and case.fragment in violations[0][1], \
            (case.name, violations)
        if case.http_status is None:
            # The unary call's message is the HTTP answer's error
            assert unary_messages[index] == http_errors[index], case.name
    assert past["successCount"] == sum(
        1 for case in CASES if _expected(case, "/api/v2/past_events") == "ACCEPTED")
    assert batch.success_count == sum(1 for case in CASES if case.status == "ACCEPTED")
    assert await stack.count_events() == before + stored


async def test_past_events_are_stored_with_their_time_and_live_ones_without(
        stack: Stack, gateway: httpx.AsyncClient) -> None:
    """An accepted event keeps its occurred time from gRPC and past_events, and
    /api/v2/event, which has no occurred, stores a live event."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    stub = events_pb2_grpc.EventServiceStub(stack.channel)
    await stack.segmentation_on(*SEGMENTED)
    case = Case("past", _event("when", ("n", 1)), "ACCEPTED", occurred=-timedelta(days=2))
    reply = await stub.GenerateEvent(_request(case, now), metadata=stack.meta())
    r = await gateway.post("/api/v2/past_events", json=[
        {**case.body, "occurred": (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")}])
    past_id = r.json()["results"][0]["eventId"]
    live = await gateway.post("/api/v2/event", json={**case.body, "occurred": "2001-01-01"})
    for event_id, occurred in ((reply.event_id, now - timedelta(days=2)),
                               (past_id, now - timedelta(days=2)),
                               (int(live.headers["X-Event-Id"]), None)):
        stored = await stub.GetEvent(events_pb2.GetEventRequest(id=event_id),
                                     metadata=stack.meta())
        if occurred is None:
            assert not stored.HasField("occurred_at") or stored.occurred_at.seconds == 0
        else:
            assert stored.occurred_at.ToDatetime(tzinfo=UTC) == occurred


async def test_rate_limit_refuses_each_event_past_the_bucket(backends: Backends,
                                                             tmp_path: Path) -> None:
    """With a budget of 1 a second every event costs a token: a batch (the gateway's or a
    client's, count_each_event or not) accepts what the bucket allows and refuses the rest
    one by one with RATE_LIMITED and a retry_after; a stream refuses each event over it; a
    unary call is refused whole, and HTTP answers 429 with Retry-After, all with the same
    message."""
    s = await start_stack(backends, tmp_path, worker=False, rate_limit=1,
                          redis_prefix=backends.prefix + "rlm:")
    try:
        stub = events_pb2_grpc.EventServiceStub(s.channel)
        now = datetime.now(UTC)
        reqs = [_request(Case("r", _event(f"r{i}"), "ACCEPTED"), now) for i in range(5)]

        async def batch(n: int, *, each: bool = True) -> list[Verdict]:
            reply = await stub.GenerateEvents(
                events_pb2.GenerateEventsRequest(events=reqs[:n], count_each_event=each),
                metadata=s.meta(), timeout=CALL_LIMIT)
            assert all(r.retry_after >= 1 for r in reply.results
                       if r.status == "RATE_LIMITED")
            return [_of_result(r) for r in reply.results]

        verdicts = await batch(5)
        assert [v[0] for v in verdicts] == ["ACCEPTED"] + ["RATE_LIMITED"] * 4
        limited = verdicts[1]
        assert limited[1][0][0] == "event" and "events per second" in limited[1][0][1]

        async def right_after_emptied(call: Callable[[], Awaitable[list[Verdict]]]
                                      ) -> list[list[Verdict]]:
            """``call``'s verdicts right after a batch that empties the bucket, until it is
            refused (at most 3 tries): on a loaded machine a second may pass between the
            two, and the token it brings is rightly spent on the call's first event."""
            tries = []
            for _ in range(3):
                emptied = await batch(5)
                assert emptied[-1] == limited, emptied
                tries.append(await call())
                if limited in tries[-1]:
                    break
            assert limited in tries[-1], tries
            assert all(v in (limited, ("ACCEPTED", ())) for t in tries for v in t), tries
            return tries

        async def unary() -> list[Verdict]:
            try:
                await stub.GenerateEvent(reqs[0], metadata=s.meta(), timeout=CALL_LIMIT)
            except grpc.aio.AioRpcError as error:
                return [_of_rpc_error(error)]
            return [("ACCEPTED", ())]

        async def http() -> list[Verdict]:
            return [_of_http(await s.post_event(_event("r-http")))]

        async def stream() -> list[Verdict]:
            return [_of_result(r) for r in await _stream(stub, reqs, s.meta())]

        # A batch of 2 refuses its second event; a unary call or an HTTP post is refused
        # whole; a batch not counting each event refuses both; each with the same error.
        assert (await right_after_emptied(lambda: batch(2)))[-1][1] == limited
        assert (await right_after_emptied(unary))[-1] == [limited]
        assert (await right_after_emptied(lambda: batch(2, each=False)))[-1] == [limited] * 2
        assert (await right_after_emptied(http))[-1] == [limited]
        # A stream refuses each event over the bucket: of 5, at most one a second passes
        # (the first only if a token came back since the bucket was emptied).
        started = asyncio.get_running_loop().time()
        streamed = (await right_after_emptied(stream))[-1]
        took = asyncio.get_running_loop().time() - started
        assert len(streamed) == 5 and 5 - streamed.count(limited) <= 1 + int(took), (
            streamed, took)
        await asyncio.sleep(1.2)  # the bucket refills, to its burst of 1
        assert [v[0] for v in await batch(3, each=False)] == ["ACCEPTED"] + ["RATE_LIMITED"] * 2
    finally:
        await s.stop()


def test_every_status_is_listed_in_the_proto_and_maps_back() -> None:
    """Each refusal's status is an EventResult.Status name, and the gateway reads the same
    error back from it; every listed status but ACCEPTED is some refusal's."""
    refusals = [InvalidArgument.from_violations([Violation("eventTypeKey", "is required")]),
                TooLarge("the event is 30100 bytes; the limit is 20480"),
                RateLimited("more than 3 events per second"),
                *(OccurredError(s) for s in ("OCCURRED_TIME_IN_FUTURE", "OCCURRED_TIME_TOO_DEPTH",
                                             "OCCURRED_DATE_IS_REQUIRED",
                                             "INCORRECT_OCCURRED_DATE_FORMAT")),
                SegmentationDisabled(OFF)]
    made = set()
    for error in refusals:
        result = events_pb2.EventResult()
        results.refuse(result, error)
        assert result.status in STATUSES and result.violations
        back = results.refusal(result)
        assert type(back) is type(error) and back is not None and back.message == error.message
        made.add(result.status)
    assert made == STATUSES - {"ACCEPTED"}
    assert results.STATUSES == STATUSES
    assert results.refusal(events_pb2.EventResult(status="ACCEPTED", event_id=1)) is None
    with pytest.raises(TypeError):
        results.status_of(NotFound("not a refusal of one event"))
