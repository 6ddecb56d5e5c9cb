"""server.codec.wirejson, the pure-Python twin of the C codec on wire bytes: the same bytes
and the same values, object keys in wire order, on any input; and request_to_input keeps
the order of the bytes received on both paths."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from eventflow.v1 import events_pb2
from server.codec import proto, values, wirejson
from server.codec.depth import MAX_DEPTH
from server.codec.jsonbody import event_from_json
from server.codec.wire import event_bytes
from server.errors import InvalidArgument
from server.ingest.model import MISSING
from tests.core.test_valuecodec import (
    UNBOUNDED,
    WIRE_CASES,
    corpus,
    json_values,
    mutations,
    nested,
    same,
    vc,
)


def pairs(value: Any) -> Any:
    """Objects as (key, value) lists, so that equality includes the order of keys."""
    if isinstance(value, dict):
        return [(k, pairs(v)) for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return [pairs(v) for v in value]
    return value


def keys(value: Any) -> Any:
    """The shape of ``value`` with its keys in order and no leaves (NaN is no trouble)."""
    if isinstance(value, dict):
        return [(k, keys(v)) for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return [keys(v) for v in value]
    return None


def identical(a: Any, b: Any) -> bool:
    """The same values with the same types, and every object's keys in the same order."""
    return same(a, b) and keys(a) == keys(b)


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except (vc.TooDeep, wirejson.TooDeep):
        return "too deep", None
    except ValueError:
        return "malformed", None


def agree(python: Any, native: Any) -> bool:
    """Two outcomes alike: the same kind, and identical values."""
    return bool(python[0] == native[0] and identical(python[1], native[1]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_same_bytes_and_values_as_the_c_codec(value: Any) -> None:
    data = vc.py_to_value_bytes(value)
    assert wirejson.value_bytes(value) == data
    native = vc.value_to_py(data, UNBOUNDED, MISSING)
    python = wirejson.value_of(data, UNBOUNDED, MISSING)
    assert identical(python, native)


def test_many_keys_keep_their_order_both_ways() -> None:
    """200 keys, unicode ones, nested: decoded in the order encoded, where a parsed
    protobuf message (serialized again) loses it."""
    value = {f"k{(i * 7919) % 1000:03d}": {"z": i, "a": [{"y": 1, "b": 2}]} for i in range(200)}
    value.update({"я": 1, "😀": 2, "": 3})
    data = wirejson.value_bytes(value)
    for decode in (lambda d: vc.value_to_py(d, UNBOUNDED, MISSING),
                   lambda d: wirejson.value_of(d, UNBOUNDED, MISSING)):
        assert pairs(decode(data)) == pairs(value)
    reparsed = vc.value_to_py(values.build_value(value).SerializeToString(), UNBOUNDED, MISSING)
    assert reparsed == value and pairs(reparsed) != pairs(value)


@pytest.mark.parametrize("name", list(WIRE_CASES))
def test_wire_corner_as_the_c_codec(name: str) -> None:
    for budget in (UNBOUNDED, 2, 1, 0):
        data = WIRE_CASES[name]
        assert agree(outcome(wirejson.value_of, data, budget, MISSING),
                     outcome(vc.value_to_py, data, budget, MISSING)), (name, budget)


def test_garbled_bytes_as_the_c_codec() -> None:
    rng = random.Random(20261202)
    seeds = corpus()
    for _ in range(3000):
        data = rng.choice(seeds)
        for _ in range(rng.randrange(1, 4)):
            data = mutations(rng, data)
        budget = rng.choice([UNBOUNDED, UNBOUNDED, 3, 1, 0])
        assert agree(outcome(wirejson.value_of, data, budget, MISSING),
                     outcome(vc.value_to_py, data, budget, MISSING)), data
        assert agree(outcome(wirejson.request_params, data, MAX_DEPTH, MISSING),
                     outcome(vc.request_params_to_py, data, MAX_DEPTH, MISSING)), data


def test_nesting_limits_as_the_c_codec() -> None:
    assert wirejson.value_of(vc.py_to_value_bytes(nested(100)), UNBOUNDED, MISSING) == nested(100)
    with pytest.raises(ValueError, match="nested deeper"):
        wirejson.value_of(vc.py_to_value_bytes(nested(101)), UNBOUNDED, MISSING)
    with pytest.raises(wirejson.TooDeep):
        wirejson.value_of(vc.py_to_value_bytes([]), -(2**200), MISSING)
    assert wirejson.value_bytes(nested(300)) == values.build_value(nested(300)).SerializeToString()
    for bad, error in (({1: "x"}, TypeError), ([(1,)], TypeError), (10**400, OverflowError),
                       ({"\udc00": 1}, UnicodeEncodeError)):
        with pytest.raises(error):
            wirejson.value_bytes(bad)


@pytest.mark.parametrize("native", [True, False])
def test_request_to_input_keeps_the_order_received(native: bool,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the bytes received, both paths decode the params in their order; a param
    nested past MAX_DEPTH is still refused by index."""
    monkeypatch.setattr(values, "NATIVE", native)
    many = {f"k{(i * 31) % 200:03d}": i for i in range(200)}
    body = {"eventTypeKey": "t", "keyValue": "k", "params": [
        {"name": "o", "value": {"zeta": 1, "alpha": {"b": 2, "a": 1}}},
        {"name": "many", "value": many}]}
    raw = event_bytes(event_from_json(body))
    req = events_pb2.GenerateEventRequest.FromString(raw)
    event = proto.request_to_input(req, raw)
    assert pairs(event.params) == pairs([(p["name"], p["value"]) for p in body["params"]])
    deep = {**body, "params": [*body["params"], {"name": "d", "value": nested(MAX_DEPTH + 1)}]}
    req = events_pb2.GenerateEventRequest()
    for name, value in [(p["name"], p["value"]) for p in deep["params"]]:
        values.build_value(value, req.params.add(name=name).value)
    with pytest.raises(InvalidArgument) as refused:
        proto.request_to_input(req, req.SerializeToString())
    assert [v.field for v in refused.value.violations] == ["params[2].value"]
