"""Contacts on the event paths: the ``contactJson`` check at ingestion and the worker's
processor that links each event to its contact, creating it when the event type allows.

The ingestion check runs only for events with a ``contactJson`` param (name matched
ignoring case); an account's field definitions come from a per-process cache that is at
most ``ttl`` seconds old, so a field defined a moment ago may be unknown for that long.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.contacts.definitions import FieldDefinition
from server.contacts.fields_store import load_field_definitions
from server.contacts.forms import parse_event_form
from server.contacts.identity import identifiers_from_params
from server.contacts.model import ContactData
from server.contacts.store import find_contact_id, upsert_contact
from server.db.models import Event, table_of
from server.errors import Conflict, ContactValidationError, InvalidArgument, Violation

__all__ = [
    "ContactJsonCheck",
    "LinkableEvent",
    "link_event_contact",
    "validate_contact_json",
]

CONTACT_JSON = "contactjson"
T = TypeVar("T")
_events = table_of(Event)


def validate_contact_json(
    params: Sequence[tuple[str, Any]], *, fields: Mapping[int, FieldDefinition]
) -> list[Violation]:
    """Every violation of the ``contactJson`` param read as a new contact; ``[]`` if valid."""
    for name, value in params:
        if isinstance(name, str) and name.lower() == CONTACT_JSON:
            try:
                parse_event_form(value, fields=fields, field_prefix=name, creating=True)
            except ContactValidationError as error:
                return error.violations
            return []
    return []


class ContactJsonCheck:
    """Adds ``contactJson`` violations to an event's own validation (one per process)."""

    def __init__(self, engine: AsyncEngine, *, ttl: float = 5.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._cache: dict[int, tuple[float, dict[int, FieldDefinition]]] = {}

    async def checked(
        self, params: Sequence[tuple[str, Any]], *, account_id: int, run: Callable[[], T]
    ) -> T:
        """``run()`` (the event's validation), raising its violations and contactJson's together."""
        if not any(isinstance(name, str) and name.lower() == CONTACT_JSON for name, _ in params):
            return run()
        found = validate_contact_json(params, fields=await self._fields(account_id))
        try:
            result = run()
        except InvalidArgument as error:
            if found:
                raise InvalidArgument.from_violations(error.violations + found) from None
            raise
        if found:
            raise InvalidArgument.from_violations(found)
        return result

    async def _fields(self, account_id: int) -> dict[int, FieldDefinition]:
        now = time.monotonic()
        cached = self._cache.get(account_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        async with self._engine.connect() as conn:
            fields = await load_field_definitions(conn, account_id=account_id)
        self._cache[account_id] = (now, fields)
        return fields


class LinkableEvent(Protocol):
    """What the processor reads of a dispatched event (``workers.events.DispatchedEvent``)."""

    @property
    def id(self) -> int: ...
    @property
    def account_id(self) -> int: ...
    @property
    def params(self) -> list[tuple[str, Any]]: ...
    @property
    def create_contacts(self) -> bool: ...


async def link_event_contact(
    conn: AsyncConnection, event: LinkableEvent, ctx: dict[str, Any]
) -> None:
    """Set ``events.contact_id``: the contact the params identify, created (source "event")
    if missing and the event type creates contacts. Invalid identifiers are ignored."""
    identifiers = identifiers_from_params(event.params)
    account_id = event.account_id
    contact_id = await find_contact_id(conn, account_id=account_id, identifiers=identifiers)
    if contact_id is None and event.create_contacts:
        data = ContactData(
            email=identifiers.email,
            phone=identifiers.phone,
            external_customer_id=identifiers.external_customer_id,
            contact_key=identifiers.contact_key,
            push_tokens=(identifiers.push_token,) if identifiers.push_token else (),
            present=frozenset(_given(identifiers)),
        )
        if data.present:
            try:
                contact_id = await upsert_contact(conn, account_id=account_id, data=data,
                                                  source="event")
            except Conflict:
                contact_id = await find_contact_id(conn, account_id=account_id,
                                                   identifiers=identifiers)
    if contact_id is not None:
        await conn.execute(update(_events).where(_events.c.id == event.id)
                           .values(contact_id=contact_id))


def _given(identifiers: Any) -> list[str]:
    names = {"email": "email", "phone": "phone", "external_customer_id": "external_customer_id",
             "contact_key": "contact_key", "push_token": "push_tokens"}
    return [attribute for kind, attribute in names.items() if getattr(identifiers, kind)]
