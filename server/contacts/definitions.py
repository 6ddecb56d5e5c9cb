"""Additional contact field definitions: the nine field types and their constraints.

Type identifiers are lower case and one word each: ``text``, ``textarea``, ``number``,
``decimal``, ``date``, ``datetime``, ``dropdown``, ``checkbox``, ``tags``. On input the
spelled-out names used by the issue and eSputnik's UI ("text area", "date-time",
"checkbox list") are accepted too, in any case, with spaces, hyphens or underscores;
output always uses the identifiers. ``min``/``max`` apply to number and decimal fields,
``allowed_values`` to dropdown and checkbox fields, which need at least one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal, TypeVar, get_args

from server.contacts.errors import InvalidValue, ViolationCollector, describe_value
from server.contacts.scalars import (
    INT32_MAX,
    INT32_MIN,
    json_type,
    read_bool,
    read_decimal,
    read_int,
    read_text,
)

__all__ = [
    "FIELD_TYPES",
    "FieldDefinition",
    "FieldType",
    "parse_field_definition",
    "parse_field_type",
]

FieldType = Literal[
    "text", "textarea", "number", "decimal", "date", "datetime", "dropdown", "checkbox", "tags"
]
FIELD_TYPES: Final[tuple[FieldType, ...]] = get_args(FieldType)
# Keys are the accepted spellings with case, spaces, hyphens and underscores removed.
_TYPE_SPELLINGS: Final[Mapping[str, FieldType]] = {
    **{name: name for name in FIELD_TYPES},
    "checkboxlist": "checkbox",
}
_CHOICE_TYPES: Final = frozenset({"dropdown", "checkbox"})
_RANGE_TYPES: Final = frozenset({"number", "decimal"})
_MAX_NAME_CHARS = 100
_MAX_ALLOWED_VALUE_CHARS = 255
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class FieldDefinition:
    """One additional contact field of an account; ``id`` is ``None`` until it is stored."""

    id: int | None
    name: str
    type: FieldType
    allowed_values: tuple[str, ...] = ()
    min: Decimal | None = None
    max: Decimal | None = None
    required: bool = False

    def to_api_dict(self) -> dict[str, object]:
        """The HTTP form: ``{"id", "name", "type", "allowedValues", "min", "max", "required"}``."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "allowedValues": list(self.allowed_values),
            "min": _render_bound(self.min, field_type=self.type),
            "max": _render_bound(self.max, field_type=self.type),
            "required": self.required,
        }


def parse_field_type(value: object) -> FieldType:
    """Map any accepted spelling of a field type to its identifier, e.g. "date-time" to "datetime"."""
    if isinstance(value, str):
        key = value.strip().lower().replace(" ", "").replace("-", "").replace("_", "")
        if key in _TYPE_SPELLINGS:
            return _TYPE_SPELLINGS[key]
    raise InvalidValue(f"is not a field type; use one of {', '.join(FIELD_TYPES)}")


def parse_field_definition(data: object, *, field_prefix: str = "") -> FieldDefinition:
    """Read the HTTP body of a field definition, raising every violation at once."""
    root = field_prefix or "body"
    collector = ViolationCollector()
    if not isinstance(data, Mapping):
        collector.reject(
            path=root, value=data, reason=f"must be a JSON object, not {json_type(data)}"
        )

    def path(name: str) -> str:
        return f"{field_prefix}.{name}" if field_prefix else name

    def read(name: str, reader: Callable[[object], T]) -> T | None:
        return collector.read(path=path(name), value=data.get(name), reader=reader)

    field_id = read("id", _read_id)
    name = read("name", _read_name)
    field_type = read("type", parse_field_type)
    allowed = read("allowedValues", _read_allowed_values)
    low = read("min", _read_bound)
    high = read("max", _read_bound)
    required = read("required", lambda value: value is not None and read_bool(value))
    collector.raise_if_any()
    assert name is not None and field_type is not None  # readers raised otherwise
    definition = FieldDefinition(
        id=field_id,
        name=name,
        type=field_type,
        allowed_values=allowed or (),
        min=low,
        max=high,
        required=bool(required),
    )
    for member, reason in _constraint_problems(definition):
        collector.add(path=path(member), value=data.get(member), reason=reason)
    collector.raise_if_any()
    return definition


def _read_id(value: object) -> int | None:
    if value is None:
        return None
    number = read_int(value)
    if not 1 <= number <= INT32_MAX:
        raise InvalidValue(f"must be a positive whole number up to {INT32_MAX}")
    return number


def _read_name(value: object) -> str:
    name = read_text(value, max_chars=_MAX_NAME_CHARS)
    if name is None:
        raise InvalidValue("is required; give the field a name")
    return name


def _read_allowed_values(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidValue(f"must be a list of text values, not {json_type(value)}")
    seen: list[str] = []
    for position, item in enumerate(value):
        try:
            text = read_text(item, max_chars=_MAX_ALLOWED_VALUE_CHARS)
        except InvalidValue as error:
            raise InvalidValue(f"item {position} {error.reason}") from None
        if text is None:
            raise InvalidValue(f"item {position} is empty; allowed values must not be blank")
        if text in seen:
            raise InvalidValue(f"item {position} repeats {describe_value(text)}; list each once")
        seen.append(text)
    return tuple(seen)


def _read_bound(value: object) -> Decimal | None:
    return None if value is None else read_decimal(value)


def _constraint_problems(definition: FieldDefinition) -> list[tuple[str, str]]:
    """Rules that tie members together; each problem names the member to fix."""
    problems: list[tuple[str, str]] = []
    kind = definition.type
    if kind in _CHOICE_TYPES and not definition.allowed_values:
        problems.append(("allowedValues", f"a {kind} field needs at least one allowed value"))
    if kind not in _CHOICE_TYPES and definition.allowed_values:
        problems.append(("allowedValues", "only dropdown and checkbox fields take allowed values"))
    for member, bound in (("min", definition.min), ("max", definition.max)):
        if bound is None:
            continue
        if kind not in _RANGE_TYPES:
            problems.append((member, "only number and decimal fields take min and max"))
        elif kind == "number" and (
            bound != bound.to_integral_value() or not INT32_MIN <= bound <= INT32_MAX
        ):
            problems.append((member, "a number field's bound must be a 32-bit whole number"))
    low, high = definition.min, definition.max
    if low is not None and high is not None and low > high:
        problems.append(("max", f"max {high} is below min {low}; swap them"))
    return problems


def _render_bound(bound: Decimal | None, *, field_type: FieldType) -> object:
    if bound is None:
        return None
    if field_type == "number" and bound == bound.to_integral_value():
        return int(bound)
    return str(bound)
