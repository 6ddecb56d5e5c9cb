"""The worker's processor that links each event to its contact, creating it when the
event type allows (the ``contactJson`` check at ingestion: ``server.contacts.contact_json``).
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.identity import identifiers_from_params
from server.contacts.store import link_contact
from server.db.models import Event, table_of

__all__ = ["LinkableEvent", "link_event_contact"]

_events = table_of(Event)


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
    """Set ``events.contact_id`` to the contact the params identify: attach the identifiers
    it lacks, or create it (source "event") when none is found and the event type creates
    contacts. Invalid identifiers and conflicts go to ``events.identity_notes``."""
    identifiers = identifiers_from_params(event.params)
    contact_id, notes = await link_contact(conn, account_id=event.account_id,
                                           identifiers=identifiers, create=event.create_contacts)
    values: dict[str, Any] = {}
    if contact_id is not None:
        values["contact_id"] = contact_id
    if notes:
        values["identity_notes"] = orjson.dumps([note.to_json() for note in notes]).decode()
    if values:
        await conn.execute(update(_events).where(_events.c.id == event.id).values(**values))
