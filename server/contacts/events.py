"""The worker's processor that links each event to its contact, creating it when the
event type allows (the ``contactJson`` check at ingestion: ``server.contacts.contact_json``).
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.identity import identifiers_from_params
from server.contacts.model import ContactData
from server.contacts.store import find_contact_id, upsert_contact
from server.db.models import Event, table_of
from server.errors import Conflict

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
