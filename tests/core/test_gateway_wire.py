"""The gateway's hand-encoded event bytes parse to exactly the message the old path built."""

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
from server.api.convert import input_to_request
from server.errors import InvalidArgument
from server.gateway import wire
from server.ingest.jsonform import event_from_json, few_containers
from server.ingest.model import MISSING, EventInput
from tests.core.seed import CONTACT_JSON, SEED_BODIES


@pytest.fixture(params=["native", "pure"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "native":
        assert wire._py_to_value_bytes is not None, "server._valuecodec is not built"
    monkeypatch.setattr(wire, "NATIVE", request.param == "native")
    yield request.param


def _same(event: EventInput) -> None:
    expected = input_to_request(event)
    raw = wire.event_bytes(event)
    assert events_pb2.GenerateEventRequest.FromString(raw) == expected
    batch = events_pb2.GenerateEventsRequest.FromString(wire.batch_bytes([raw, raw]))
    assert batch == events_pb2.GenerateEventsRequest(events=[expected, expected],
                                                     count_each_event=True)


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
    _same(EventInput("t", "k", [("n", 2**70)]))  # too large for the codec: message path
    _same(EventInput("past", "k", [("a", 1)], occurred=datetime(2024, 5, 1, tzinfo=UTC)))
    assert wire.batch_bytes([]) == b"\x10\x01"


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
        assert event_from_json(doc, check_depth=False) == event_from_json(doc)


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
    assert few_containers(orjson.dumps(kb_body()))
