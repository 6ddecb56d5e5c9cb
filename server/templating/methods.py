"""Java methods and bean properties that templates may call on data values.

Nothing here touches Python attributes: every callable a template can reach is
listed in the tables below under its Java name, so ``$s.__class__`` or
``$m.getClass()`` simply find nothing. Mutators refuse frozen event data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import re2

from server.errors import ReadOnlyError
from server.templating import limits
from server.templating.values import (
    MAX_STRING,
    FrozenList,
    FrozenMap,
    MapEntry,
    check_length,
    concat,
    is_number,
    java_equals,
    java_str,
)

Method = Callable[..., object]


class NoSuchMethod(Exception):
    """The value has no Java method of that name taking those arguments."""


class InvocationError(Exception):
    """A Java method threw (index out of range...): the render fails, as in Velocity."""


class Void:
    """What a ``void`` Java method returns: it renders as nothing."""

    def __str__(self) -> str:
        return ""


VOID = Void()


def call_method(target: object, name: str, args: list[object]) -> object:
    """Invokes Java method ``name`` on ``target``; NoSuchMethod if there is none."""
    table = _table_for(target)
    method = table.get(name) if table is not None else None
    if method is None:
        raise NoSuchMethod(name)
    try:
        return method(target, *args)
    except TypeError as error:
        # Python reports wrong arity or argument types as TypeError; Java would
        # find no matching overload.
        raise NoSuchMethod(name) from error


def get_property(target: object, name: str) -> object:
    """``$x.name``: a map key, else the bean getter ``getName()``/``isName()``."""
    if isinstance(target, Mapping):
        return target.get(name)
    table = _table_for(target)
    if table is None:
        return None
    suffix = name[:1].upper() + name[1:]
    for getter in (f"get{suffix}", f"is{suffix}"):
        method = table.get(getter)
        if method is not None:
            try:
                return method(target)
            except TypeError:
                continue
    return None


def get_index(target: object, index: object) -> object:
    """``$x[i]``: list position or map key."""
    if isinstance(target, Mapping):
        return target.get(index)
    if isinstance(target, list):
        return _list_get(target, index)
    return None


def _table_for(target: object) -> dict[str, Method] | None:
    kind = type(target)
    if kind is str:
        return _STRING
    if kind is FrozenList or kind is list:
        return _LIST
    if kind is FrozenMap or kind is dict:
        return _MAP
    if kind is bool:
        return _BOOLEAN
    if is_number(target):
        return _NUMBER
    if kind is MapEntry:
        return _ENTRY
    return getattr(target, "JAVA_METHODS", None)


def _need_int(*values: object) -> None:
    for value in values:
        if type(value) is not int:
            raise TypeError("int expected")


def _need_str(*values: object) -> None:
    for value in values:
        if type(value) is not str:
            raise TypeError("String expected")


def _str_arg(value: object) -> str:
    if type(value) is not str:
        raise TypeError("String expected")
    return value


def _utf16_length(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _substring(text: str, begin: int, end: int | None = None) -> str:
    _need_int(begin, *(() if end is None else (end,)))
    stop = len(text) if end is None else end
    if begin < 0 or stop > len(text) or begin > stop:
        raise InvocationError(f"begin {begin}, end {stop}, length {len(text)}")
    return text[begin:stop]


def _char_at(text: str, index: int) -> str:
    _need_int(index)
    if not 0 <= index < len(text):
        raise InvocationError(f"index {index}, length {len(text)}")
    return text[index]


def _index_of(text: str, needle: str, start: int = 0) -> int:
    _need_str(needle)
    return text.find(needle, max(start, 0))


def _last_index_of(text: str, needle: str, start: int | None = None) -> int:
    _need_str(needle)
    return text.rfind(needle) if start is None else text.rfind(needle, 0, start + len(needle))


def _replace(text: str, old: str, new: str) -> str:
    _need_str(old, new)
    grows = (len(new) - len(old)) * (text.count(old) if old else len(text) + 1)
    if len(text) + grows > MAX_STRING:
        raise InvocationError(f"replace() result exceeds {MAX_STRING} characters")
    return text.replace(old, new)


# Java's regular expressions backtrack, and so does Python's ``re``: ``(a|a)*b`` on 26
# letters runs for seconds and cannot be interrupted. RE2 matches in time linear in the
# text and refuses what needs backtracking (back-references, look-around), which a
# message template is told plainly.
MAX_PATTERN = 1000
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.max_mem = 8 << 20


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> Any:
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as error:
        detail = error.args[0] if error.args else error
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise InvocationError(
            f"regular expression not supported in message templates ({detail}); "
            "back-references and look-around are not available") from None


def _regex(pattern: object) -> Any:
    _need_str(pattern)
    assert isinstance(pattern, str)
    if len(pattern) > MAX_PATTERN:
        raise InvocationError(f"regular expression longer than {MAX_PATTERN} characters")
    return _compiled(pattern)


def _replacement_parts(replacement: str, groups: int) -> list[str | int]:
    """Java's replacement syntax: ``$n`` is group n (more digits while the number stays a
    group, as Java reads it), a backslash takes the next character literally; a ``$``
    without a digit stays text."""
    parts: list[str | int] = []
    text: list[str] = []
    i = 0
    while i < len(replacement):
        ch = replacement[i]
        if ch == "\\" and i + 1 < len(replacement):
            text.append(replacement[i + 1])
            i += 2
            continue
        if ch == "$" and i + 1 < len(replacement) and replacement[i + 1].isdecimal():
            group, i = int(replacement[i + 1]), i + 2
            while (i < len(replacement) and replacement[i].isdecimal()
                   and group * 10 + int(replacement[i]) <= groups):
                group, i = group * 10 + int(replacement[i]), i + 1
            if group > groups:
                raise InvocationError(f"No group {group}")
            parts += ["".join(text), group]
            text = []
            continue
        text.append(ch)
        i += 1
    parts.append("".join(text))
    return parts


def _replace_all(text: str, pattern: str, replacement: str, count: int = 0) -> str:
    """``replaceAll``/``replaceFirst``, the result counted as it is built."""
    _need_str(replacement)
    compiled = _regex(pattern)
    parts = _replacement_parts(replacement, compiled.groups)
    budget = limits.current()
    out: list[str] = []
    size = end = done = 0
    for match in compiled.finditer(text):
        if count and done == count:
            break
        pieces = [text[end:match.start()]]
        pieces += [part if type(part) is str else (match.group(part) or "") for part in parts]
        size += sum(len(piece) for piece in pieces)
        if size > MAX_STRING:
            raise InvocationError(f"replaceAll() result exceeds {MAX_STRING} characters")
        out += pieces
        end = match.end()
        done += 1
        if not done % 4096:
            budget.check_time()
    if not done:
        return text
    check_length(size + len(text) - end)
    out.append(text[end:])
    return "".join(out)


def _split(text: str, pattern: str) -> list[object]:
    """Java's ``split``: no captured groups in the result, no leading piece for a
    zero-width match at the start, trailing empty strings dropped."""
    parts: list[object] = []
    end = 0
    for match in _regex(pattern).finditer(text):
        if match.end() == 0:
            continue
        parts.append(text[end:match.start()])
        end = match.end()
    if not parts:
        return [text]
    parts.append(text[end:])
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _compare_strings(text: str, other: str) -> int:
    _need_str(other)
    for a, b in zip(text, other):
        if a != b:
            return ord(a) - ord(b)
    return len(text) - len(other)


def _java_trim(text: str) -> str:
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


_STRING: dict[str, Method] = {
    "length": _utf16_length,
    "isEmpty": lambda s: s == "",
    "toUpperCase": lambda s: s.upper(),
    "toLowerCase": lambda s: s.lower(),
    "trim": _java_trim,
    "strip": lambda s: s.strip(),
    "substring": _substring,
    "charAt": _char_at,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "replace": _replace,
    "replaceAll": _replace_all,
    "replaceFirst": lambda s, p, r: _replace_all(s, p, r, 1),
    "matches": lambda s, p: _regex(p).fullmatch(s) is not None,
    "split": _split,
    "contains": lambda s, x: _str_arg(x) in s,
    "startsWith": lambda s, x, at=0: s.startswith(_str_arg(x), at),
    "endsWith": lambda s, x: s.endswith(_str_arg(x)),
    "equals": java_equals,
    "equalsIgnoreCase": lambda s, x: type(x) is str and s.lower() == x.lower(),
    "compareTo": _compare_strings,
    "compareToIgnoreCase": lambda s, x: _compare_strings(s.lower(), x.lower()),
    "concat": lambda s, x: concat(s, _str_arg(x)),
    "toString": lambda s: s,
}


def _list_get(items: list[object], index: object) -> object:
    if type(index) is not int:
        raise TypeError("int expected")
    if not 0 <= index < len(items):
        raise InvocationError(f"Index {index} out of bounds for length {len(items)}")
    return items[index]


def _mutable_list(items: list[object]) -> list[object]:
    if type(items) is FrozenList:
        raise ReadOnlyError()
    return items


def _list_add(items: list[object], *args: object) -> object:
    target = _mutable_list(items)
    if len(args) == 1:
        target.append(args[0])
        return True
    index, value = args
    _need_int(index)
    target.insert(index, value)  # type: ignore[arg-type]
    return VOID


def _list_set(items: list[object], index: int, value: object) -> object:
    old = _list_get(items, index)
    _mutable_list(items)[index] = value
    return old


def _list_remove(items: list[object], what: object) -> object:
    target = _mutable_list(items)
    if type(what) is int:
        old = _list_get(target, what)
        del target[what]
        return old
    for i, item in enumerate(target):
        if java_equals(item, what):
            del target[i]
            return True
    return False


def _list_index_of(items: list[object], what: object) -> int:
    return next((i for i, item in enumerate(items) if java_equals(item, what)), -1)


def _sub_list(items: list[object], begin: int, end: int) -> list[object]:
    _need_int(begin, end)
    if begin < 0 or end > len(items) or begin > end:
        raise InvocationError(f"fromIndex {begin}, toIndex {end}, size {len(items)}")
    return list(items[begin:end])


def _clear(container: Any) -> object:
    if type(container) in (FrozenList, FrozenMap):
        raise ReadOnlyError()
    container.clear()
    return VOID


_LIST: dict[str, Method] = {
    "size": len,
    "isEmpty": lambda items: not items,
    "get": _list_get,
    "contains": lambda items, x: _list_index_of(items, x) >= 0,
    "indexOf": _list_index_of,
    "subList": _sub_list,
    "equals": java_equals,
    "toString": java_str,
    "add": _list_add,
    "set": _list_set,
    "remove": _list_remove,
    "clear": _clear,
}


def _mutable_map(mapping: dict[object, object]) -> dict[object, object]:
    if type(mapping) is FrozenMap:
        raise ReadOnlyError()
    return mapping


def _map_put(mapping: dict[object, object], key: object, value: object) -> object:
    target = _mutable_map(mapping)
    old = target.get(key)
    target[key] = value
    return old


def _map_put_all(mapping: dict[object, object], other: object) -> object:
    if not isinstance(other, Mapping):
        raise TypeError("Map expected")
    _mutable_map(mapping).update(other)
    return VOID


_MAP: dict[str, Method] = {
    "get": lambda m, k: m.get(k),
    "getOrDefault": lambda m, k, default: m.get(k, default),
    "containsKey": lambda m, k: k in m,
    "containsValue": lambda m, v: any(java_equals(x, v) for x in m.values()),
    "keySet": lambda m: list(m.keys()),
    "values": lambda m: list(m.values()),
    "entrySet": lambda m: [MapEntry(k, v) for k, v in m.items()],
    "size": len,
    "isEmpty": lambda m: not m,
    "equals": java_equals,
    "toString": java_str,
    "put": _map_put,
    "putAll": _map_put_all,
    "remove": lambda m, k: _mutable_map(m).pop(k, None),
    "clear": _clear,
}

_NUMBER: dict[str, Method] = {
    "intValue": lambda n: int(n),
    "longValue": lambda n: int(n),
    "doubleValue": lambda n: float(n),
    "floatValue": lambda n: float(n),
    "toString": java_str,
    "equals": java_equals,
    "compareTo": lambda n, o: (n > o) - (n < o) if is_number(o) else _raise_type(),
}

_BOOLEAN: dict[str, Method] = {
    "booleanValue": lambda b: b,
    "toString": java_str,
    "equals": java_equals,
}

_ENTRY: dict[str, Method] = {
    "getKey": lambda e: e.key,
    "getValue": lambda e: e.value,
    "toString": java_str,
}


def _raise_type() -> int:
    raise TypeError("Number expected")
