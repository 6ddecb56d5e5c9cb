"""The batch's contact linker: the identity rule (``server.contacts.identity``) for all of
a batch's events at once, set-based.

One query loads every stored contact holding any identifier of the batch; each event is
planned (``plan_link``) in id order against that index, which grows as the batch creates
contacts, so two events of one new contact in a batch link to one contact. The contacts
to create go in one multi-row ``INSERT .. ON CONFLICT DO NOTHING``: a row the unique
constraints refuse (another writer created that contact meanwhile), and the rarer
events that attach identifiers to a found contact or carry a push token, take the
one-event path of the contacts store (``link_contact``), which re-plans from what is
stored. The events' ``contact_id`` and ``identity_notes`` are written in one statement.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.identity import (
    Identifiers,
    IdentityNote,
    LinkPlan,
    LookupKey,
    StoredIdentity,
    identifiers_from_params,
    owners_index,
    plan_link,
)
from server.contacts.model import ContactData
from server.contacts.record import contact_columns
from server.contacts.store import link_contact, load_identities
from server.contacts.tables import CONTACTS
from server.contacts.validation import email_key
from server.db.dialect import on_conflict_insert
from server.db.models import Event, table_of, utcnow
from server.processing.batch import Batch

__all__ = ["link_batch_contacts"]

_events = table_of(Event)
_c = CONTACTS
_UNIQUE = ("external_customer_id", "email_key", "phone", "contact_key")


def _provisional(ids: Identifiers, placeholder: int) -> StoredIdentity:
    return StoredIdentity(contact_id=placeholder, external_customer_id=ids.external_customer_id,
                          email_key=None if ids.email is None else email_key(ids.email),
                          phone=ids.phone, contact_key=ids.contact_key)


def _index(owners: dict[LookupKey, StoredIdentity], identity: StoredIdentity) -> None:
    for key in identity.lookup_keys():
        owners[key] = identity


async def link_batch_contacts(conn: AsyncConnection, batch: Batch, ctx: dict[str, Any]) -> None:
    """A ``BatchProcessor``: fills ``batch.contacts`` and the events' contact columns."""
    account_id = batch.account_id
    parsed: list[Identifiers | None] = []
    for event in batch.events:
        if event.contact_id is not None:
            batch.contacts[event.id] = event.contact_id
            parsed.append(None)
            continue
        parsed.append(identifiers_from_params(event.params))
    wanted = [ids for ids in parsed if ids is not None and ids.lookup_keys()]
    if not wanted and not any(ids is not None and ids.invalid for ids in parsed):
        return
    owners = owners_index(await load_identities(conn, account_id=account_id,
                                                identifiers=wanted))
    # Decided per event, in order: (contact id or placeholder < 0, notes) or a slow path.
    decided: dict[int, tuple[int | None, tuple[IdentityNote, ...]]] = {}
    slow: set[int] = set()
    creates: dict[int, Identifiers] = {}  # placeholder -> identifiers
    events = batch.events
    for index, (event, ids) in enumerate(zip(events, parsed, strict=True)):
        if ids is None:
            continue
        plan: LinkPlan = plan_link(ids, owners, create=event.create_contacts)
        touches_new = plan.contact_id is not None and plan.contact_id < 0
        if plan.attach or (plan.create and ids.push_token is not None) or (
                touches_new and plan.notes):
            # Everything from here on is decided in order after the slow event.
            slow.update(e.id for e, p in zip(events[index:], parsed[index:], strict=True)
                        if p is not None)
            break
        if plan.create:
            placeholder = -(len(creates) + 1)
            creates[placeholder] = ids
            _index(owners, _provisional(ids, placeholder))
            decided[event.id] = (placeholder, plan.notes)
        else:
            decided[event.id] = (plan.contact_id, plan.notes)
    real = await _create_many(conn, account_id=account_id, creates=creates)
    links: list[dict[str, Any]] = []
    for event, ids in zip(events, parsed, strict=True):
        if ids is None:
            continue
        if event.id in slow or (event.id in decided and (decided[event.id][0] or 0) < 0
                                and real.get(decided[event.id][0] or 0) is None):
            contact_id, notes = await link_contact(conn, account_id=account_id,
                                                   identifiers=ids, create=event.create_contacts)
        else:
            found, notes = decided[event.id]
            contact_id = real.get(found) if found is not None and found < 0 else found
        if contact_id is not None:
            batch.contacts[event.id] = contact_id
        if contact_id is not None or notes:
            links.append({"eid": event.id, "cid": contact_id, "notes": orjson.dumps(
                [n.to_json() for n in notes]).decode() if notes else None})
    if links:
        await conn.execute(update(_events).where(_events.c.id == bindparam("eid"))
                           .values(contact_id=bindparam("cid"),
                                   identity_notes=bindparam("notes")), links)


async def _create_many(conn: AsyncConnection, *, account_id: int,
                       creates: dict[int, Identifiers]) -> dict[int, int | None]:
    """Insert the new contacts in one statement; placeholder -> new id (None: refused)."""
    if not creates:
        return {}
    now = utcnow()
    rows = []
    wanted: dict[tuple[Any, ...], int] = {}
    for placeholder, ids in creates.items():
        data = ContactData(email=ids.email, phone=ids.phone,
                           external_customer_id=ids.external_customer_id,
                           contact_key=ids.contact_key)
        row = {**contact_columns(data, every=True), "account_id": account_id,
               "status": "active", "source": "event", "created_at": now, "updated_at": now}
        rows.append(row)
        wanted[tuple(row[c] for c in _UNIQUE)] = placeholder
    stmt = (on_conflict_insert(conn, _c).values(rows).on_conflict_do_nothing()
            .returning(_c.c.id, *(_c.c[c] for c in _UNIQUE)))
    out: dict[int, int | None] = dict.fromkeys(creates)
    for r in (await conn.execute(stmt)).all():
        made = wanted.get(tuple(r[1:]))
        if made is not None:
            out[made] = int(r[0])
    return out
