"""Deleting a contact found by id or external customer id, and erasing it.

``erase`` is the right to be forgotten: besides the contact row (with its field values,
push tokens and group memberships) the contact's personal data held elsewhere goes
(each feature holding some lists an eraser in ``ERASERS``), and every record that
pointed at the contact (events, workflow runs and messages, API-sent messages, orders,
import sessions' results) points at nobody; the letters sent to it lose their address,
subject and body.
Events keep their bodies as received: they are the account's history, and their
identifiers are what the caller sent; see docs/compatibility.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.deleted import forget_deleted
from server.contacts.groups import forget_memberships
from server.contacts.imports import erase_from_imports
from server.contacts.record import ContactRecord
from server.contacts.store import delete_contact, get_contact
from server.contacts.tables import CONTACTS
from server.contacts.validation import email_key
from server.db.models import Event, table_of
from server.errors import NotFound
from server.messaging.store import erase_recipient
from server.orders.store import erase_order_buyer
from server.workflows.models import WorkflowMessageRow, WorkflowRunRow

__all__ = ["ERASED", "ERASERS", "Eraser", "delete_contact_by", "erase_contact"]

# What an erased address or name is replaced with where a record must keep the column.
ERASED: Final = "(erased)"
# Removes what one feature holds of the contact, in the erasing transaction.
Eraser = Callable[[AsyncConnection, ContactRecord], Awaitable[None]]
_events = table_of(Event)
_runs = table_of(WorkflowRunRow)
_messages = table_of(WorkflowMessageRow)


async def _unlink_events(conn: AsyncConnection, contact: ContactRecord) -> None:
    await conn.execute(update(_events).where(and_(
        _events.c.account_id == contact.account_id, _events.c.contact_id == contact.id))
        .values(contact_id=None))


async def _unlink_workflows(conn: AsyncConnection, contact: ContactRecord) -> None:
    await conn.execute(update(_runs).where(and_(
        _runs.c.account_id == contact.account_id, _runs.c.contact_id == contact.id))
        .values(contact_id=None))
    mine = _messages.c.contact_id == contact.id
    if contact.email is not None:
        mine = or_(mine, and_(_messages.c.channel == "email",
                              _messages.c.recipient == contact.email))
    # The letter as sent (kept for the console) is addressed to the person: it goes too.
    await conn.execute(update(_messages).where(and_(
        _messages.c.account_id == contact.account_id, mine))
        .values(contact_id=None, recipient=ERASED, subject=ERASED, body_html=None,
                body_text=None))


async def _erase_api_messages(conn: AsyncConnection, contact: ContactRecord) -> None:
    await erase_recipient(conn, account_id=contact.account_id, contact_id=contact.id,
                          email=contact.email, erased=ERASED)


async def _erase_imports(conn: AsyncConnection, contact: ContactRecord) -> None:
    data = contact.data
    identifiers = [data.email, data.phone, data.external_customer_id, data.contact_key,
                   *data.push_tokens]
    await erase_from_imports(conn, account_id=contact.account_id, contact_id=contact.id,
                             identifiers=[i for i in identifiers if i], erased=ERASED)


async def _erase_orders(conn: AsyncConnection, contact: ContactRecord) -> None:
    await erase_order_buyer(conn, account_id=contact.account_id, contact_id=contact.id,
                            email=contact.email,
                            external_customer_id=contact.external_customer_id)


async def _erase_tombstones(conn: AsyncConnection, contact: ContactRecord) -> None:
    data = contact.data
    await forget_deleted(conn, account_id=contact.account_id, keys=[
        ("email_key", None if data.email is None else email_key(data.email)),
        ("phone", data.phone), ("external_customer_id", data.external_customer_id),
        ("contact_key", data.contact_key)])


ERASERS: list[Eraser] = [_unlink_events, _unlink_workflows, _erase_orders, _erase_api_messages,
                         _erase_imports, _erase_tombstones]


async def erase_contact(conn: AsyncConnection, *, account_id: int, contact_id: int) -> None:
    """Delete the contact and its personal data everywhere; ``NotFound`` if there is none."""
    record = await get_contact(conn, account_id=account_id, contact_id=contact_id)
    if record is None:
        raise NotFound(f"no contact with id {contact_id} in this account")
    for eraser in ERASERS:
        await eraser(conn, record)
    await forget_memberships(conn, account_id=account_id, contact_id=contact_id)
    await delete_contact(conn, account_id=account_id, contact_id=contact_id, remember=False)


async def delete_contact_by(conn: AsyncConnection, *, account_id: int, contact_id: int | None,
                            external_customer_id: str | None, erase: bool) -> int:
    """Delete (or erase) the contact with this id or external customer id; its id."""
    if contact_id is None:
        found = (await conn.execute(select(CONTACTS.c.id).where(and_(
            CONTACTS.c.account_id == account_id,
            CONTACTS.c.external_customer_id == external_customer_id)))).scalar()
        if found is None:
            raise NotFound(f"no contact with externalCustomerId {external_customer_id!r} "
                           "in this account")
        contact_id = int(found)
    if erase:
        await erase_contact(conn, account_id=account_id, contact_id=contact_id)
    else:
        await forget_memberships(conn, account_id=account_id, contact_id=contact_id)
        await delete_contact(conn, account_id=account_id, contact_id=contact_id, remember=True)
    return contact_id
