"""Java value semantics for rendered data: printing, truth, equality and arithmetic.

Apache Velocity hands template values to Java, so a JSON ``2.50`` prints as ``2.5``,
``7 / 2`` is ``3`` and an empty string is true. These helpers reproduce that on the
plain Python values (str, int, float, bool, None, lists, dicts) the engine works with.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

from server.errors import ReadOnlyError, RenderLimitExceeded

# Longest string a template may build by concatenation, printing or string methods.
MAX_STRING = 1_000_000
# Widest integer arithmetic may produce. Velocity widens to BigInteger instead of
# overflowing, so ``#set($x = $x * $x)`` in a loop would otherwise square its way to
# numbers whose single multiplication takes seconds; 4096 bits is ~1,233 digits.
MAX_INT_BITS = 4096


def check_length(size: int) -> None:
    """Refuses a string of ``size`` characters before it is built."""
    if size > MAX_STRING:
        raise RenderLimitExceeded(f"string longer than {MAX_STRING} characters")


def concat(left: str, right: str) -> str:
    """``left + right``, refused before it is built when it would pass ``MAX_STRING``."""
    check_length(len(left) + len(right))
    return left + right


class FrozenMap(dict[str, object]):
    """A JSON object from event data: readable like a dict, never writable."""

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise ReadOnlyError()

    __setitem__ = __delitem__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type[FrozenMap], tuple[dict[str, object]]]:
        # Pickled whole (to a render process) rather than rebuilt key by key.
        return FrozenMap, (dict(self),)


class FrozenList(list[object]):
    """A JSON array from event data: readable like a list, never writable."""

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise ReadOnlyError()

    __setitem__ = __delitem__ = __iadd__ = _refuse  # type: ignore[assignment]
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __reduce__(self) -> tuple[type[FrozenList], tuple[list[object]]]:
        return FrozenList, (list(self),)


class MapEntry:
    """One ``Map.Entry`` of ``entrySet()``: ``$e.key`` and ``$e.value``."""

    __slots__ = ("key", "value")

    def __init__(self, key: object, value: object) -> None:
        self.key = key
        self.value = value


def freeze(value: object) -> object:
    """Deep read-only copy of JSON-like data; already frozen values are returned as is."""
    if value is None or type(value) in _SCALARS or type(value) in (FrozenMap, FrozenList):
        return value
    if isinstance(value, Mapping):
        return FrozenMap({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return FrozenList(freeze(v) for v in value)
    raise TypeError(f"template data must be JSON-like, not {type(value).__name__}")


_SCALARS = (str, int, float, bool)


def is_number(value: object) -> bool:
    """True for Java numbers: ints and floats but not booleans."""
    return type(value) is int or type(value) is float


def truthy(value: object) -> bool:
    """Velocity 1.7 truth: everything but null and false, so "" and 0 are true."""
    return value is not None and value is not False


def java_str(value: object) -> str:
    """``String.valueOf`` of the Java object Velocity would hold for ``value``.

    Containers print through a counted builder, so a list holding many long strings
    fails at ``MAX_STRING`` instead of being joined into gigabytes first.
    """
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return java_double(value)  # type: ignore[arg-type]
    if value is None:
        return "null"
    if not isinstance(value, (Mapping, MapEntry, list, tuple)):
        return str(value)
    parts: list[str] = []
    _print_into(value, parts, [0])
    return "".join(parts)


def _print_into(value: object, parts: list[str], size: list[int]) -> None:
    def put(text: str) -> None:
        size[0] += len(text)
        check_length(size[0])
        parts.append(text)

    if isinstance(value, Mapping):
        put("{")
        for i, (k, v) in enumerate(value.items()):
            if i:
                put(", ")
            _print_into(k, parts, size)
            put("=")
            _print_into(v, parts, size)
        put("}")
    elif isinstance(value, MapEntry):
        _print_into(value.key, parts, size)
        put("=")
        _print_into(value.value, parts, size)
    elif isinstance(value, (list, tuple)):
        put("[")
        for i, item in enumerate(value):
            if i:
                put(", ")
            _print_into(item, parts, size)
        put("]")
    else:
        put(java_str(value))


def java_double(value: float) -> str:
    """``Double.toString``: plain between 1e-3 and 1e7, else ``d.dddE±n``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = repr(value)
        return text if "e" not in text else format(Decimal(text), "f")
    _, digits, exponent = Decimal(repr(magnitude)).as_tuple()
    shown = "".join(map(str, digits)).rstrip("0") or "0"
    power = len(digits) + int(exponent) - 1
    sign = "-" if value < 0 else ""
    return f"{sign}{shown[0]}.{shown[1:] or '0'}E{power}"


def java_equals(left: object, right: object) -> bool:
    """``Object.equals``: same Java type and value (Integer 1 is not Double 1.0)."""
    if is_number(left) and is_number(right):
        return type(left) is type(right) and left == right
    if isinstance(left, Sequence) and isinstance(right, Sequence) and not isinstance(left, str):
        if isinstance(right, str) or len(left) != len(right):
            return False
        return all(java_equals(a, b) for a, b in zip(left, right))
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(java_equals(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


def velocity_equals(left: object, right: object) -> bool:
    """Velocity's ``==``: numbers by value, same types by equals, else by their strings."""
    if left is None or right is None:
        return left is None and right is None
    if is_number(left) and is_number(right):
        return left == right
    both_lists = isinstance(left, list) and isinstance(right, list)
    both_maps = isinstance(left, Mapping) and isinstance(right, Mapping)
    if both_lists or both_maps:
        return java_equals(left, right)
    if type(left) is type(right):
        return left == right
    return java_str(left) == java_str(right)


def compare(left: object, right: object) -> int | None:
    """Ordering for ``< > <= >=``: numbers only; None when Velocity would refuse."""
    if is_number(left) and is_number(right):
        a, b = cast(float, left), cast(float, right)
        return (a > b) - (a < b)
    return None


def add(left: object, right: object) -> object:
    """``+``: string concatenation when either side is a string, else numeric addition."""
    if left is None or right is None:
        return None
    if type(left) is str or type(right) is str:
        # Doubling a string with + in a loop would otherwise exhaust memory.
        return concat(java_str(left), java_str(right))
    return _arith(left, right, lambda a, b: a + b, 1)


def subtract(left: object, right: object) -> object:
    """``-`` on numbers; anything else is null."""
    return _arith(left, right, lambda a, b: a - b, 1)


def multiply(left: object, right: object) -> object:
    """``*`` on numbers; anything else is null."""
    return _arith(left, right, lambda a, b: a * b, None)


def divide(left: object, right: object) -> object:
    """``/``: Java integer division truncates toward zero; division by zero is null."""
    if not (is_number(left) and is_number(right)) or right == 0:
        return None
    if type(left) is int and type(right) is int:
        quotient = abs(left) // abs(right)
        return quotient if (left < 0) == (right < 0) else -quotient
    return left / right  # type: ignore[operator]


def modulo(left: object, right: object) -> object:
    """``%``: Java remainder takes the dividend's sign; by zero is null."""
    if not (is_number(left) and is_number(right)) or right == 0:
        return None
    if type(left) is int and type(right) is int:
        remainder = abs(left) % abs(right)
        return remainder if left >= 0 else -remainder
    return math.fmod(left, right)  # type: ignore[arg-type]


def _arith(left: object, right: object, op: Callable[[Any, Any], object],
           carry: int | None) -> object:
    """``op`` on two numbers; integer results wider than ``MAX_INT_BITS`` are refused
    before they are computed (``carry``: the bits a sum adds, None for a product)."""
    if not (is_number(left) and is_number(right)):
        return None
    if type(left) is int and type(right) is int:
        a, b = left.bit_length(), right.bit_length()
        bits = a + b if carry is None else max(a, b) + carry
        if bits > MAX_INT_BITS:
            raise RenderLimitExceeded(f"number wider than {MAX_INT_BITS} bits")
    return op(left, right)
