"""The native google.protobuf.Value codec (server._valuecodec) against the pure-Python code.

The C codec must return exactly what the pure-Python code of ``server/codec`` returns, accept exactly the
bytes protobuf accepts, and never crash on any input.
"""

from __future__ import annotations

import importlib
import math
import os
import random
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.protobuf import struct_pb2
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.payloads import kb_body, small_body
from eventflow.v1 import events_pb2
from server.codec import proto, values
from server.codec.depth import MAX_DEPTH
from server.codec.jsonbody import event_from_json
from server.config import Settings
from server.errors import InvalidArgument
from server.ingest.model import MISSING, EventInput

# Not importorskip: CI machines have a C compiler, so a missing extension is a build bug.
vc = importlib.import_module("server._valuecodec")

UNBOUNDED = 1 << 30
EXACT = 2**53


def test_native_codec_is_built_and_used() -> None:
    """``make install`` built the extension, and a process uses it unless its settings
    say ``pure_python``."""
    assert callable(vc.value_to_py) and issubclass(vc.TooDeep, Exception)
    assert values.AVAILABLE
    try:
        values.configure(Settings(pure_python=True))
        assert values.NATIVE is False
        values.configure(Settings())
        assert values.NATIVE is True
    finally:
        values.configure(Settings())


def test_pure_python_is_read_once_into_settings() -> None:
    """EVENTFLOW_PURE_PYTHON is read by Settings.from_env, never by importing the codec."""
    assert Settings.from_env({"EVENTFLOW_PURE_PYTHON": "1"}).pure_python is True
    for off in ("", "0", " 0 "):
        assert Settings.from_env({"EVENTFLOW_PURE_PYTHON": off}).pure_python is False
    assert Settings.from_env({}).pure_python is False
    code = "from server.codec import values; print(values.NATIVE)"
    env = {**os.environ, "EVENTFLOW_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "True"


@pytest.fixture(params=["native", "pure"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Runs a test with the codec on each path."""
    monkeypatch.setattr(values, "NATIVE", request.param == "native")
    yield request.param


# ---------------------------------------------------------------------------------------
# Helpers


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (1 is not 1.0 nor True); NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a is b or a == b)


def python_value(data: bytes, budget: int = UNBOUNDED) -> Any:
    """What the pure-Python path makes of serialized Value bytes (DecodeError if protobuf
    refuses them; the private _TooDeep when over budget)."""
    return values.value_within(struct_pb2.Value.FromString(data), budget)


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except (vc.TooDeep, values.TooDeep):
        return "too deep", None


def wire_bytes(value: struct_pb2.Value) -> bytes:
    return value.SerializeToString(deterministic=True)


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def entry(key: bytes | None, *values: bytes) -> bytes:
    """A Struct map entry (as a Struct field) with the given serialized Values."""
    body = (field(1, key) if key is not None else b"") + b"".join(field(2, v) for v in values)
    return field(1, body)


NUMBER = b"\x11" + (1.5).hex().encode()[:0] + bytes(8)  # number_value 0.0
STRING_A = field(3, b"a")
NULL = b"\x08\x00"
TRUE = b"\x20\x01"


# ---------------------------------------------------------------------------------------
# Random JSON values

SPECIAL_INTS = [0, 1, -1, EXACT - 1, -(EXACT - 1), EXACT, -EXACT, EXACT + 1, -EXACT - 1,
                2**63, -(2**63), 2**64 + 7, 10**300]
SPECIAL_FLOATS = [0.0, -0.0, 0.5, -2.5, float(EXACT), float(-EXACT), float(EXACT - 1),
                  1e300, -1e-300, 5e-324, math.nan, math.inf, -math.inf, 1234.5]
SPECIAL_TEXT = ["", "a", "é", "Парфумована вода", "𝄞 astral 😀", "\x00", "\u2028", "a" * 300,
                "ключ", "\U0010ffff"]

leaves = (st.none() | st.booleans()
          | st.integers(min_value=-EXACT - 3, max_value=EXACT + 3)
          | st.sampled_from(SPECIAL_INTS) | st.sampled_from(SPECIAL_FLOATS)
          | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
          | st.sampled_from(SPECIAL_TEXT))
keys = st.text(max_size=10) | st.sampled_from(SPECIAL_TEXT + ["name", "price", "qty"])
json_values = st.recursive(
    leaves,
    lambda children: (st.lists(children, max_size=5)
                      | st.dictionaries(keys, children, max_size=5)),
    max_leaves=40)


def expected_json(value: Any) -> Any:
    """What a JSON value becomes after a trip through protobuf (numbers are doubles)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        num = float(value)
        return int(num) if num.is_integer() and -EXACT < num < EXACT else num
    if isinstance(value, dict):
        return {k: expected_json(v) for k, v in value.items()}
    return [expected_json(v) for v in value]


# ---------------------------------------------------------------------------------------
# Agreement on valid values


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_value_to_py_agrees_with_python(value: Any) -> None:
    message = values.build_value(value)
    data = message.SerializeToString()
    native = vc.value_to_py(data, UNBOUNDED, MISSING)
    assert same(native, values.value_within(message, UNBOUNDED))
    assert same(native, expected_json(value))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_py_to_value_bytes_agrees_with_python(value: Any) -> None:
    data = vc.py_to_value_bytes(value)
    parsed = struct_pb2.Value.FromString(data)
    assert wire_bytes(parsed) == wire_bytes(values.build_value(value))
    assert same(vc.value_to_py(data, UNBOUNDED, MISSING), expected_json(value))


def nested(depth: int, leaf: Any = 1, kind: str = "list") -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if kind == "list" or (kind == "mixed" and i % 2) else {"k": value}
    return value


depth_shapes = st.recursive(
    st.sampled_from([1, "s", None, True]),
    lambda children: (st.lists(children, min_size=0, max_size=3)
                      | st.dictionaries(st.sampled_from("abc"), children, max_size=3)),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(depth_shapes, st.integers(min_value=-2, max_value=8))
def test_depth_budget_runs_out_where_python_does(value: Any, budget: int) -> None:
    data = values.build_value(value).SerializeToString()
    native = outcome(lambda: vc.value_to_py(data, budget, MISSING))
    python = outcome(lambda: python_value(data, budget))
    assert native[0] == python[0]
    assert same(native[1], python[1])


@pytest.mark.parametrize("kind", ["list", "dict", "mixed"])
def test_depth_budget_at_max_depth(kind: str) -> None:
    for depth in range(MAX_DEPTH - 2, MAX_DEPTH + 3):
        data = values.build_value(nested(depth, kind=kind)).SerializeToString()
        native = outcome(lambda data=data: vc.value_to_py(data, MAX_DEPTH, MISSING))
        python = outcome(lambda data=data: python_value(data, MAX_DEPTH))
        assert native[0] == python[0] == ("ok" if depth <= MAX_DEPTH else "too deep")
        assert same(native[1], python[1])


def test_huge_budget_and_hard_nesting_limit() -> None:
    """Recursion stops at 100 levels whatever the budget; deeper bytes are a ValueError."""
    for budget in (UNBOUNDED, 2**200, sys.maxsize):
        assert vc.value_to_py(vc.py_to_value_bytes(nested(100)), budget, MISSING) == nested(100)
        with pytest.raises(ValueError, match="nested deeper"):
            vc.value_to_py(vc.py_to_value_bytes(nested(101)), budget, MISSING)
    with pytest.raises(vc.TooDeep):
        vc.value_to_py(vc.py_to_value_bytes([]), -(2**200), MISSING)
    # values.value_to_py falls back to Python for a deep message built in memory
    deep = values.build_value(nested(150, kind="mixed"))
    assert values.value_to_py(deep) == nested(150, kind="mixed")


# ---------------------------------------------------------------------------------------
# Wire-format corners, each checked against protobuf's own parse


WIRE_CASES = {
    "empty Value is unset": b"",
    "null": NULL,
    "null with odd enum value": b"\x08\x96\x01",
    "bool from a long varint": b"\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    "number": b"\x11" + bytes.fromhex("000000000000f03f"),
    "number -0.0": b"\x11" + bytes.fromhex("0000000000000080"),
    "number 2**53": b"\x11" + bytes.fromhex("0000000000004043"),
    "nan": b"\x11" + bytes.fromhex("010000000000f87f"),
    "empty string": field(3, b""),
    "empty struct": field(5, b""),
    "empty list": field(6, b""),
    "last oneof member wins": STRING_A + TRUE + NULL,
    "string then struct": STRING_A + field(5, entry(b"k", TRUE)),
    "struct members merge": field(5, entry(b"a", TRUE)) + field(5, entry(b"b", NULL)),
    "list members merge": field(6, field(1, TRUE)) + field(6, field(1, NULL)),
    "struct, list, struct: only the last": (field(5, entry(b"a", TRUE)) + field(6, b"")
                                            + field(5, entry(b"b", NULL))),
    "duplicate key: last wins": field(5, entry(b"a", TRUE) + entry(b"a", STRING_A)),
    "entry without value is unset": field(5, entry(b"k")),
    "entry without key": field(5, entry(None, TRUE)),
    "entry key repeated": field(5, field(1, field(1, b"x") + field(1, b"y") + field(2, TRUE))),
    "entry values merge": field(5, entry(b"k", field(5, entry(b"a", TRUE)),
                                         field(5, entry(b"b", NULL)))),
    "unset Value in a list": field(6, field(1, b"") + field(1, TRUE)),
    "unknown fields of every wire type": (b"\x38\x05" + b"\x41" + bytes(8) + field(9, b"xyz")
                                          + b"\x55" + bytes(4) + b"\x5b\x08\x01\x5c" + TRUE),
    "unknown nested group": b"\x5b\x63\x08\x01\x64\x5c" + NULL,
    "known field, wrong wire type": b"\x0a\x00" + b"\x18\x01" + b"\x21" + bytes(8) + TRUE,
    "wrong wire type only": b"\x1d" + bytes(4),
    "unknown fields inside struct and value": field(5, b"\x10\x01"
                                                    + entry(b"k", TRUE + b"\x48\x01")),
    "unknown fields inside list": field(6, b"\x10\x01" + field(1, NULL)),
    # upb leaves a map entry with an unknown field out of the map (checked all the same)
    "entry with an unknown field": field(5, field(1, field(1, b"k") + field(2, TRUE) + b"\x18\x01")
                                         + entry(b"j", NULL)),
    "entry with a wrong-wire-type key": field(5, field(1, b"\x08\x01" + field(2, TRUE))),
    "entry with a group": field(5, field(1, field(1, b"k") + b"\x5b\x5c" + field(2, TRUE))),
    "left-out entry is checked": field(5, field(1, b"\x18\x01" + field(1, b"\xff"))),
    "left-out entry spends no budget": field(5, field(1, b"\x18\x01" + field(2, field(6, b"")))),
    "non-minimal tag": b"\xa0\x80\x80\x80\x00\x01",
    "largest field number": b"\xf8\xff\xff\xff\x0f\x00" + NULL,
    # refused by protobuf
    "truncated varint": b"\x08",
    "truncated double": b"\x11\x00",
    "truncated length": field(3, b"abc")[:-1],
    "length past the end": b"\x1a\x05ab",
    "field number 0": b"\x00\x00",
    "tag too long": b"\x88\x80\x80\x80\x80\x00\x00",
    "tag over 32 bits": b"\xf8\xff\xff\xff\x1f\x00",
    "varint over 10 bytes": b"\x08" + b"\xff" * 10 + b"\x01",
    "wire type 6": b"\x0e",
    "wire type 7": b"\x0f",
    "end group alone": b"\x0c",
    "unterminated group": b"\x0b\x08\x01",
    "mismatched end group": b"\x0b\x14",
    "invalid utf-8 string": field(3, b"\xff"),
    "surrogate in utf-8": field(3, b"\xed\xa0\x80"),
    "superseded invalid string": field(3, b"\xff") + TRUE,
    "invalid utf-8 key": field(5, entry(b"\xc3")),
    "superseded invalid key": field(5, field(1, field(1, b"\xc3") + field(1, b"k"))),
    "superseded broken struct": field(5, b"\x0a\x05") + TRUE,
    "broken entry": field(5, field(1, b"\x12\x05")),
    "broken list item": field(6, field(1, b"\x1a\x02a")),
}


def check_against_protobuf(data: bytes, budget: int = UNBOUNDED) -> None:
    """The codec agrees with protobuf + values.value_within on any bytes."""
    try:
        message = struct_pb2.Value.FromString(data)
    except DecodeError:
        message = None
    if message is None:
        # Over budget the codec may stop (TooDeep) before it reaches the broken part.
        with pytest.raises(ValueError if budget == UNBOUNDED else (ValueError, vc.TooDeep)):
            vc.value_to_py(data, budget, MISSING)
        return
    python = outcome(lambda: values.value_within(message, budget))
    native = outcome(lambda: vc.value_to_py(data, budget, MISSING))
    assert native[0] == python[0], data
    assert same(native[1], python[1]), (data, native, python)


@pytest.mark.parametrize("name", list(WIRE_CASES))
def test_wire_corner(name: str) -> None:
    check_against_protobuf(WIRE_CASES[name])


def test_wire_corners_decode_as_expected() -> None:
    """A few of the corners spelled out, so agreement is not agreement on nonsense."""
    def conv(name: str) -> Any:
        return vc.value_to_py(WIRE_CASES[name], UNBOUNDED, MISSING)

    assert conv("empty Value is unset") is MISSING
    assert conv("last oneof member wins") is None
    assert conv("struct members merge") == {"a": True, "b": None}
    assert conv("list members merge") == [True, None]
    assert conv("struct, list, struct: only the last") == {"b": None}
    assert conv("duplicate key: last wins") == {"a": "a"}
    assert conv("entry without value is unset") == {"k": MISSING}
    assert conv("entry without key") == {"": True}
    assert conv("entry key repeated") == {"y": True}
    assert conv("entry values merge") == {"k": {"a": True, "b": None}}
    assert conv("unset Value in a list") == [MISSING, True]
    assert conv("known field, wrong wire type") is True
    assert conv("unknown fields inside struct and value") == {"k": True}
    assert conv("unknown fields inside list") == [None]
    assert conv("entry with an unknown field") == {"j": None}
    assert vc.value_to_py(WIRE_CASES["left-out entry spends no budget"], 1, MISSING) == {}
    assert conv("wrong wire type only") is MISSING
    assert same(conv("number -0.0"), 0) and same(conv("number 2**53"), float(EXACT))
    for name in ("invalid utf-8 string", "superseded invalid key", "tag too long"):
        with pytest.raises(ValueError):
            conv(name)


def corpus() -> list[bytes]:
    values = [kb_body()["params"][2]["value"], {"a": [1, None, {"b": "é"}], "c": ""},
              [[], {}, "", 0, -1.5, True], nested(6, kind="mixed"), "𝄞"]
    out = [vc.py_to_value_bytes(v) for v in values]
    return out + list(WIRE_CASES.values())


def mutations(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    op = rng.randrange(6)
    if op == 0 and b:  # flip a byte
        b[rng.randrange(len(b))] = rng.randrange(256)
    elif op == 1 and b:  # truncate
        del b[rng.randrange(len(b)):]
    elif op == 2:  # insert random bytes
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.randbytes(rng.randrange(1, 4))
    elif op == 3 and b:  # delete a run
        i = rng.randrange(len(b))
        del b[i:i + rng.randrange(1, 4)]
    elif op == 4:  # splice two inputs
        other = rng.choice(corpus())
        b = b[:rng.randrange(len(b) + 1)] + bytearray(other[rng.randrange(len(other) + 1):])
    else:  # random bytes
        b = bytearray(rng.randbytes(rng.randrange(0, 24)))
    return bytes(b)


def test_garbled_bytes_agree_with_protobuf_and_never_crash() -> None:
    """Thousands of mutated encodings: accepted exactly when protobuf accepts them, with
    the same result; otherwise ValueError (or TooDeep) and nothing worse."""
    rng = random.Random(20261127)
    seeds = corpus()
    for i in range(6000):
        data = rng.choice(seeds)
        for _ in range(rng.randrange(1, 4)):
            data = mutations(rng, data)
        check_against_protobuf(data, budget=rng.choice([UNBOUNDED, UNBOUNDED, 3, 1, 0]))
        try:
            vc.request_params_to_py(data, MAX_DEPTH, MISSING)
        except (ValueError, vc.TooDeep):
            pass


def test_request_params_agree_with_python() -> None:
    """request_params_to_py walks GenerateEventRequest like the per-param code."""
    req = proto.input_to_request(event_from_json(kb_body()))
    req.message_id = "m1"
    req.occurred.seconds = 1_700_000_000
    req.legacy_v1 = True
    extra = req.params.add(name="no value")
    assert not extra.HasField("value")
    req.params.add(name="empty value").value.SetInParent()
    native = vc.request_params_to_py(req.SerializeToString(), MAX_DEPTH, MISSING)
    python = proto._request_params(req)
    assert same(native, python)
    assert native[-2:] == [("no value", MISSING), ("empty value", MISSING)]
    # EventParam corners: a repeated name (last wins), repeated values (merged), unknowns
    param = (field(1, b"a") + field(1, b"b") + field(2, field(5, entry(b"x", TRUE)))
             + field(2, field(5, entry(b"y", NULL))) + b"\x18\x07")
    data = field(3, param) + b"\x30\x01" + field(1, b"type")
    assert vc.request_params_to_py(data, MAX_DEPTH, MISSING) == [("b", {"x": True, "y": None})]
    assert proto._request_params(events_pb2.GenerateEventRequest.FromString(data)) == \
        [("b", {"x": True, "y": None})]
    with pytest.raises(vc.TooDeep):
        vc.request_params_to_py(field(3, field(2, field(6, b""))), 0, MISSING)
    with pytest.raises(ValueError):
        vc.request_params_to_py(field(3, field(1, b"\xff")), MAX_DEPTH, MISSING)


# ---------------------------------------------------------------------------------------
# py_to_value_bytes errors


@pytest.mark.parametrize("bad,error", [
    ((1, 2), TypeError), (object(), TypeError), ({1, 2}, TypeError), (b"x", TypeError),
    ({1: "x"}, TypeError), ({"a": [1, (2,)]}, TypeError), (10**400, OverflowError),
    (-(10**400), OverflowError), ("\ud800", UnicodeEncodeError),
    ({"\udc00": 1}, UnicodeEncodeError),
])
def test_py_to_value_bytes_refuses_what_python_refuses(bad: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        vc.py_to_value_bytes(bad)
    with pytest.raises(error):
        values.build_value(bad)


def test_py_to_value_bytes_messages_and_depth() -> None:
    with pytest.raises(TypeError, match="not a JSON value: tuple"):
        vc.py_to_value_bytes([(1,)])
    assert vc.py_to_value_bytes(nested(200)) and vc.py_to_value_bytes(nested(199, kind="mixed"))
    with pytest.raises(RecursionError):
        vc.py_to_value_bytes(nested(201))
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(RecursionError):
        vc.py_to_value_bytes(cyclic)


def test_py_to_value_bytes_subclasses_and_big_payloads() -> None:
    class Str(str):
        pass

    class Dict(dict[str, Any]):
        pass

    value = Dict(a=Str("x"), b=[True, 3], c="я" * 70_000, d=[{"k": "v" * 200}] * 300)
    data = vc.py_to_value_bytes(value)
    assert wire_bytes(struct_pb2.Value.FromString(data)) == wire_bytes(values.build_value(value))
    assert vc.value_to_py(data, UNBOUNDED, MISSING) == value


# ---------------------------------------------------------------------------------------
# proto.py and values.py on both paths


def deep_request(depth: int) -> events_pb2.GenerateEventRequest:
    """Built in memory, field by field: protobuf parses no message this deep."""
    req = events_pb2.GenerateEventRequest(event_type_key="t", key_value="k")
    for name, value in (("ok", {"a": [1, 2]}), ("deep", nested(depth)), ("none", MISSING),
                        ("n", 7.0)):
        param = req.params.add(name=name)
        if value is not MISSING:
            values.build_value(value, param.value)
    return req


@pytest.mark.usefixtures("mode")
def test_request_to_input_both_paths() -> None:
    """Both paths decode alike, and refuse a param nested past MAX_DEPTH by its index."""
    for body in (kb_body(3), small_body(2)):
        req = proto.input_to_request(event_from_json(body))
        event = proto.request_to_input(req)
        assert same(event.params, [(p["name"], expected_json(p["value"])) for p in body["params"]])
    event = proto.request_to_input(deep_request(MAX_DEPTH))
    assert same(event.params[1], ("deep", nested(MAX_DEPTH))) and same(event.params[3], ("n", 7))
    # Past MAX_DEPTH, and deeper than protobuf decodes (only a message built in memory)
    for depth in (MAX_DEPTH + 1, 45, 120):
        with pytest.raises(InvalidArgument) as refused:
            proto.request_to_input(deep_request(depth))
        assert [(v.field, v.message) for v in refused.value.violations] == [
            ("params[1].value", f"is nested deeper than {MAX_DEPTH} levels")]


def test_input_to_request_same_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    events = [event_from_json(kb_body(1)), event_from_json(small_body(1)),
              EventInput("t", "k", [("a", MISSING), ("b", None), ("c", ""), ("d", {}),
                                    ("e", []), ("f", nested(MAX_DEPTH, kind="mixed"))],
                         message_id="m", legacy_v1=True)]
    made = {}
    for native in (True, False):
        monkeypatch.setattr(values, "NATIVE", native)
        made[native] = [wire_bytes(proto.input_to_request(e)) for e in events]
        batch = events_pb2.GenerateEventsRequest()
        for e in events:
            proto.input_to_request(e, batch.events.add())
        made[native].append(wire_bytes(batch))
        made[native].append(wire_bytes(values.py_to_value(nested(300))))
        made[native].append(wire_bytes(values.py_to_value({"a": [1.5, None]})))
    assert made[True] == made[False]


@pytest.mark.usefixtures("mode")
def test_value_to_py_both_paths() -> None:
    for value in ({"a": [1, 2.5, None, True, "x"]}, "s", 3, [], {}):
        assert same(values.value_to_py(values.py_to_value(value)), value)
    assert values.value_to_py(struct_pb2.Value()) is MISSING
    with pytest.raises(TypeError, match="not a JSON value: set"):
        values.py_to_value({"a": {1}})


# ---------------------------------------------------------------------------------------
# Reference counts


def test_no_leaks_or_reference_drift() -> None:
    """Repeated conversions, failing ones included, keep memory and refcounts flat."""
    value = kb_body()["params"][2]["value"]
    data = vc.py_to_value_bytes(value)
    deep = vc.py_to_value_bytes(nested(30))
    bad = [b"\x1a\x05ab", field(5, entry(b"k", TRUE) + entry(b"\xff", TRUE)),
           field(6, field(1, TRUE) + field(1, b"\x0f"))]

    def work() -> None:
        vc.value_to_py(data, MAX_DEPTH, MISSING)
        assert vc.value_to_py(WIRE_CASES["entry without value is unset"], 1, MISSING) == \
            {"k": MISSING}
        assert vc.value_to_py(b"", MAX_DEPTH, MISSING) is MISSING
        vc.py_to_value_bytes(value)
        vc.request_params_to_py(field(3, field(1, b"n") + field(2, data)), MAX_DEPTH, MISSING)
        for broken in bad:
            with pytest.raises(ValueError):
                vc.value_to_py(broken, MAX_DEPTH, MISSING)
        with pytest.raises(vc.TooDeep):
            vc.value_to_py(deep, MAX_DEPTH, MISSING)
        with pytest.raises(TypeError):
            vc.py_to_value_bytes({"a": [1, object()]})

    for _ in range(200):
        work()
    shared = (MISSING, None, True, False, value, data)
    counts = [sys.getrefcount(x) for x in shared]
    for _ in range(1000):
        work()
    # A reference lost or leaked per call would show as a drift of 1000 or more; the
    # interpreter's own use of None and the booleans moves them by a few.
    drift = [n - m for n, m in zip([sys.getrefcount(x) for x in shared], counts)]
    assert all(abs(d) < 100 for d in drift), drift
    assert drift[0] == drift[4] == drift[5] == 0, drift
    tracemalloc.start()
    try:
        work()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            work()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown
