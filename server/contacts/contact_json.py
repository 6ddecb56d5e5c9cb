"""The ``contactJson`` param of an event: read as a new contact when the event is accepted.

An event may carry a ``contactJson`` param (name matched ignoring case) with the contact
it creates or updates; ingestion refuses the event when that contact would be refused.
An account's field definitions come from a per-process cache at most ``ttl`` seconds
old, so a field defined a moment ago may be unknown for that long.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from server.contacts.definitions import FieldDefinition
from server.contacts.fields_store import load_field_definitions
from server.contacts.forms import parse_event_form
from server.errors import ContactValidationError, Violation

__all__ = ["CONTACT_JSON", "ContactJsonCheck", "contact_json_param", "validate_contact_json"]

CONTACT_JSON = "contactjson"


def contact_json_param(params: Sequence[tuple[str, Any]]) -> tuple[str, Any] | None:
    """The event's ``contactJson`` param as (name as sent, value), or None; the first wins."""
    for name, value in params:
        # The length first: this runs for every param of every event.
        if len(name) == len(CONTACT_JSON) and name.lower() == CONTACT_JSON:
            return name, value
    return None


def validate_contact_json(name: str, value: Any, *, fields: Mapping[int, FieldDefinition]
                          ) -> list[Violation]:
    """Every violation of a ``contactJson`` value read as a new contact; ``[]`` if valid."""
    try:
        parse_event_form(value, fields=fields, field_prefix=name, creating=True)
    except ContactValidationError as error:
        return list(error.violations)
    return []


class ContactJsonCheck:
    """``validate_contact_json`` against the account's field definitions (one per process)."""

    def __init__(self, engine: AsyncEngine, *, ttl: float = 5.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._cache: dict[int, tuple[float, dict[int, FieldDefinition]]] = {}

    async def violations(self, name: str, value: Any, *, account_id: int) -> list[Violation]:
        """The violations of the ``contactJson`` param ``name`` (as sent) of an event."""
        return validate_contact_json(name, value, fields=await self._fields(account_id))

    async def _fields(self, account_id: int) -> dict[int, FieldDefinition]:
        now = time.monotonic()
        cached = self._cache.get(account_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        async with self._engine.connect() as conn:
            fields = await load_field_definitions(conn, account_id=account_id)
        self._cache[account_id] = (now, fields)
        return fields
