"""One order as plain data, read from eSputnik's order form and checked field by field.

Members of the form: ``externalOrderId``, ``externalCustomerId``, ``totalCost``,
``currency``, ``date``, ``status``, ``email``, ``phone``, ``firstName``, ``lastName``,
``items[{externalItemId, name, category, quantity, cost, url, imageUrl, description}]``,
and the optional ``shipping``, ``discount``, ``taxes``, ``deliveryAddress``... which are
kept as sent. Plugins send blank strings for values they lack: ``""`` counts as absent.
The stored document is the order normalised: numbers as numbers, the status upper-case,
the email's domain lower-case, the phone E.164, the date ISO 8601 with its offset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from server.contacts.errors import InvalidValue
from server.contacts.scalars import json_type, read_decimal, read_identifier, read_text
from server.contacts.validation import (
    is_blank_external_id,
    normalise_email,
    normalise_phone,
)
from server.errors import Violation

__all__ = [
    "MONEY_MEMBERS",
    "ORDER_STATUSES",
    "OrderData",
    "OrderInvalid",
    "parse_order",
]

ORDER_STATUSES: Final = ("INITIALIZED", "IN_PROGRESS", "DELIVERED", "CANCELLED",
                         "ABANDONED_SHOPPING_CART")
MONEY_MEMBERS: Final = ("shipping", "discount", "taxes")
MAX_ID_CHARS: Final = 300
MAX_TEXT_CHARS: Final = 1000
MAX_ITEMS: Final = 1000
_ITEM_NUMBERS: Final = ("quantity", "cost")
_ITEM_TEXTS: Final = ("name", "category", "url", "imageUrl", "description")
_ORDER_CHECKED: Final = frozenset({"externalOrderId", "externalCustomerId", "status",
                                   "totalCost", "currency", "date", "email", "phone",
                                   "firstName", "lastName", "items", *MONEY_MEMBERS})


class OrderInvalid(Exception):
    """The order breaks rules; ``violations`` name each field (``orders[3].status``)."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.message}" for v in violations))
        self.violations = violations


@dataclass(frozen=True, slots=True)
class OrderData:
    external_order_id: str
    status: str | None
    external_customer_id: str | None
    email: str | None
    phone: str | None
    total_cost: Decimal | None
    currency: str | None
    ordered_at: datetime | None
    # The normalised order, members in the order they came; what is stored and emitted.
    document: dict[str, Any]


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _read_date(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidValue(f"must be an ISO 8601 date-time text, not {json_type(value)}")
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError:
        raise InvalidValue("must be an ISO 8601 date-time such as 2024-05-01T12:30:00+03:00"
                           ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _read_currency(value: object) -> str:
    text = read_text(value, max_chars=3)
    if text is None or len(text) != 3 or not text.isalpha() or not text.isascii():
        raise InvalidValue("must be a three-letter ISO 4217 code such as UAH or EUR")
    return text.upper()


def _read_status(value: object) -> str:
    text = read_text(value, max_chars=40)
    status = (text or "").upper()
    if status not in ORDER_STATUSES:
        raise InvalidValue(f"must be one of {', '.join(ORDER_STATUSES)}")
    return status


class _Reader:
    """Reads members of one object into ``out``, collecting violations under ``path``."""

    def __init__(self, doc: Mapping[str, Any], path: str, problems: list[Violation]) -> None:
        self.doc, self.path, self.problems = doc, path, problems
        self.out: dict[str, Any] = {}

    def read(self, name: str, reader: Callable[[object], Any], *, required: bool = False,
             shown: Callable[[Any], Any] = lambda v: v) -> Any:
        raw = self.doc.get(name)
        if _blank(raw):
            if required:
                self.problems.append(Violation(f"{self.path}.{name}", "is required"))
            return None
        try:
            value = reader(raw)
        except InvalidValue as error:
            self.problems.append(Violation(f"{self.path}.{name}", f"{raw!r}: {error.reason}"))
            return None
        if value is not None:
            self.out[name] = shown(value)
        return value

    def keep_rest(self, checked: frozenset[str]) -> None:
        """Members this reader does not check travel on as they were sent."""
        for name, value in self.doc.items():
            if name not in checked and not _blank(value):
                self.out[name] = value


def _items(value: object, path: str, problems: list[Violation]) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        problems.append(Violation(path, f"must be a list of items, not {json_type(value)}"))
        return []
    if len(value) > MAX_ITEMS:
        problems.append(Violation(path, f"holds {len(value)} items; at most {MAX_ITEMS}"))
        return []
    items = []
    for index, entry in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(entry, dict):
            problems.append(Violation(where, f"must be an object, not {json_type(entry)}"))
            continue
        reader = _Reader(entry, where, problems)
        reader.read("externalItemId", lambda v: read_identifier(v, max_chars=MAX_ID_CHARS),
                    required=True)
        for name in _ITEM_TEXTS:
            reader.read(name, lambda v: read_text(v, max_chars=MAX_TEXT_CHARS))
        for name in _ITEM_NUMBERS:
            reader.read(name, read_decimal, shown=_number)
        reader.keep_rest(frozenset({"externalItemId", *_ITEM_TEXTS, *_ITEM_NUMBERS}))
        items.append(_ordered(entry, reader.out))
    return items


def parse_order(doc: object, *, path: str, complete: bool = True) -> OrderData:
    """Read one order; ``complete`` (the route) also requires status, totalCost, currency,
    date and a contact identifier, which an order event may leave out."""
    problems: list[Violation] = []
    if not isinstance(doc, dict):
        raise OrderInvalid([Violation(path, f"must be an object, not {json_type(doc)}")])
    r = _Reader(doc, path, problems)
    order_id = r.read("externalOrderId", lambda v: read_identifier(v, max_chars=MAX_ID_CHARS),
                      required=True)
    customer = None
    if not is_blank_external_id(doc.get("externalCustomerId")):
        customer = r.read("externalCustomerId",
                          lambda v: read_identifier(v, max_chars=MAX_ID_CHARS))
    status = r.read("status", _read_status, required=complete)
    total = r.read("totalCost", read_decimal, required=complete, shown=_number)
    currency = r.read("currency", _read_currency, required=complete)
    ordered_at = r.read("date", _read_date, required=complete,
                        shown=lambda d: d.isoformat(timespec="milliseconds"))
    email = r.read("email", normalise_email)
    phone = r.read("phone", normalise_phone)
    for name in ("firstName", "lastName"):
        r.read(name, lambda v: read_text(v, max_chars=200))
    for name in MONEY_MEMBERS:
        r.read(name, read_decimal, shown=_number)
    if not _blank(doc.get("items")):
        r.out["items"] = _items(doc["items"], f"{path}.items", problems)
    r.keep_rest(_ORDER_CHECKED)
    if complete and customer is None and email is None and phone is None and not any(
            v.field.endswith((".email", ".phone", ".externalCustomerId")) for v in problems):
        problems.append(Violation(path, "needs externalCustomerId, email or phone to find "
                                  "its contact"))
    if problems:
        raise OrderInvalid(problems)
    return OrderData(external_order_id=order_id, status=status, external_customer_id=customer,
                     email=email, phone=phone, total_cost=total, currency=currency,
                     ordered_at=ordered_at, document=_ordered(doc, r.out))


def _ordered(sent: Mapping[str, Any], normalised: dict[str, Any]) -> dict[str, Any]:
    """The normalised members in the order the caller sent them."""
    return {name: normalised[name] for name in sent if name in normalised}
