"""The one encoder (``server.codec.wire``) writes bytes that parse to exactly the message
built field by field from the proto's definitions, on both codec paths."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.payloads import kb_body, small_body
from eventflow.v1 import events_pb2
from server.codec import values, wire
from server.codec.depth import few_containers
from server.codec.jsonbody import event_from_json
from server.codec.proto import input_to_request
from server.errors import InvalidArgument
from server.ingest.model import MISSING, EventInput
from tests.core.seed import CONTACT_JSON, SEED_BODIES


@pytest.fixture(params=["native", "pure"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "native":
        assert values.AVAILABLE, "server._valuecodec is not built"
    monkeypatch.setattr(values, "NATIVE", request.param == "native")
    yield request.param


def _reference(event: EventInput) -> events_pb2.GenerateEventRequest:
    """The message built field by field, with protobuf's own setters."""
    req = events_pb2.GenerateEventRequest(event_type_key=event.event_type_key,
                                          key_value=event.key_value,
                                          message_id=event.message_id,
                                          legacy_v1=event.legacy_v1)
    for name, value in event.params:
        param = req.params.add(name=name)
        if value is not MISSING:
            values.build_value(value, param.value)
    if event.occurred is not None:
        req.occurred.FromDatetime(event.occurred)
    return req


def _same(event: EventInput) -> None:
    expected = _reference(event)
    raw = wire.event_bytes(event)
    assert events_pb2.GenerateEventRequest.FromString(raw) == expected
    assert input_to_request(event) == expected
    batch = events_pb2.GenerateEventsRequest.FromString(wire.batch_bytes([raw, raw]))
    assert batch == events_pb2.GenerateEventsRequest(events=[expected, expected],
                                                     count_each_event=True)
    once = events_pb2.GenerateEventsRequest.FromString(
        wire.batch_bytes([raw], count_each_event=False))
    assert once == events_pb2.GenerateEventsRequest(events=[expected])


BODIES: list[Any] = [*SEED_BODIES.values(), CONTACT_JSON, kb_body(7), small_body(3),
                     {"eventTypeKey": "", "keyValue": ""},
                     {"eventTypeKey": "t", "keyValue": 380501234567, "messageId": "m-1"},
                     {"eventTypeKey": "t" * 200, "keyValue": "ключ" * 100,
                      "params": [{"name": "x" * 300, "value": "y" * 20000}]},
                     {"eventTypeKey": "t", "params": [{"name": "", "value": None}, {"value": 1},
                                                      {"name": "a"}, {}, {"name": "b",
                                                      "value": {"": [[], {}, 0.1, -0.0]}}]}]


@pytest.mark.parametrize("index", range(len(BODIES)))
@pytest.mark.parametrize("legacy", [False, True])
def test_bodies_encode_as_the_message(mode: str, index: int, legacy: bool) -> None:
    _same(event_from_json(BODIES[index], legacy_v1=legacy))


def test_inputs_outside_the_json_shape(mode: str) -> None:
    """What the JSON check never makes still encodes (or falls back to) the same."""
    _same(EventInput("t", "k", [("a", MISSING), ("", MISSING)]))
    _same(EventInput("t", "k", [("n", 2**70)]))
    # Past the C codec's 200 levels (and past what protobuf parses): the Python encoder
    deep = EventInput("deep", "k", [("d", _nested(230))])
    assert wire.event_bytes(deep) == _reference(deep).SerializeToString()
    _same(EventInput("past", "k", [("a", 1)], occurred=datetime(2024, 5, 1, tzinfo=UTC)))
    _same(EventInput("old", "k", occurred=datetime(1961, 4, 12, 6, 7, 8, 9000, tzinfo=UTC)))
    assert wire.batch_bytes([]) == b"\x10\x01"
    assert wire.batch_bytes([], count_each_event=False) == b""


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_varint() -> None:
    for n in (0, 1, 127, 128, 300, 16383, 16384, 2**21, 2**35 + 5):
        raw = wire.varint(n)
        value = sum((b & 0x7F) << (7 * i) for i, b in enumerate(raw))
        assert value == n and all(b & 0x80 for b in raw[:-1]) and not raw[-1] & 0x80


leaves = (st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**64 - 1)
          | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
json_values = st.recursive(leaves, lambda children: (
    st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=30)
params = st.lists(st.fixed_dictionaries({}, optional={"name": st.text(max_size=12) | json_values,
                                                      "value": json_values}), max_size=6)
bodies = st.fixed_dictionaries({}, optional={
    "eventTypeKey": st.text(max_size=20) | json_values, "keyValue": st.text(max_size=20) | leaves,
    "params": params | json_values, "messageId": st.text(max_size=10) | leaves})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(body=bodies, legacy=st.booleans())
def test_random_json_encodes_as_the_message(mode: str, body: dict[str, Any], legacy: bool
                                            ) -> None:
    doc = orjson.loads(orjson.dumps(body))  # what a request body parses to
    try:
        event = event_from_json(doc, legacy_v1=legacy)
    except InvalidArgument:
        return
    _same(event)


deep_values = st.recursive(leaves, lambda children: (
    st.lists(children, min_size=1, max_size=2)
    | st.dictionaries(st.sampled_from(["a", "[", "{"]), children, min_size=1, max_size=2)),
    max_leaves=60)


@settings(max_examples=300, deadline=None)
@given(value=deep_values, extra=st.text(alphabet="[{x", max_size=5))
def test_few_containers_skips_only_walks_that_would_pass(value: Any, extra: str) -> None:
    """When ``few_containers`` holds, skipping the depth walk changes nothing."""
    raw = orjson.dumps({"eventTypeKey": "t" + extra, "keyValue": "k",
                        "params": [{"name": "v", "value": value}]})
    doc = orjson.loads(raw)
    if few_containers(raw):
        assert event_from_json(doc, source=raw) == event_from_json(doc)


def test_few_containers_bound() -> None:
    for depth in range(1, 40):
        raw = orjson.dumps({"eventTypeKey": "t", "keyValue": "k", "params": [
            {"name": "v", "value": orjson.loads(b"[" * depth + b"]" * depth)}]})
        try:
            event_from_json(orjson.loads(raw))
            deep = False
        except InvalidArgument:
            deep = True
        assert not (deep and few_containers(raw)), depth
        if deep:  # the text given as source does not skip a walk that would refuse
            with pytest.raises(InvalidArgument):
                event_from_json(orjson.loads(raw), source=raw)
    assert few_containers(orjson.dumps(kb_body()))
