"""Subscription forms (eSputnik's ``POST /api/v1/contact/subscribe``).

A new contact is created unconfirmed (double opt-in: a workflow on ``subscribeFromApi``
sends the confirmation). An existing one is updated, except the channels it already has:
a form cannot replace a known address or phone. Either way the contact joins the named
static groups. The event to emit is described here and written by the caller through the
acceptance pipeline, after this transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts import parse_api_form
from server.contacts.bulk import dedupe_column
from server.contacts.fields_store import load_field_definitions
from server.contacts.groups import add_to_groups
from server.contacts.identity import Identifiers
from server.contacts.model import CHANNEL_ATTRIBUTES, ContactData
from server.contacts.record import contact_params, identifiers_of
from server.contacts.store import find_contact_id, get_contact, upsert_contact
from server.errors import InvalidArgument, NotFound, Violation
from server.ingest.model import EventInput

__all__ = ["CREATED_EVENT", "UPDATED_EVENT", "Subscribed", "subscribe", "subscription_event"]

CREATED_EVENT: Final = "subscribeFromApi"
UPDATED_EVENT: Final = "subscribeUpdateFromApi"
SOURCE: Final = "subscribe"
_IDENTIFYING: Final = frozenset({*CHANNEL_ATTRIBUTES, "external_customer_id", "contact_key"})


@dataclass(frozen=True, slots=True)
class Subscribed:
    contact_id: int
    created: bool
    data: ContactData


def _has(data: ContactData, attribute: str) -> bool:
    value = getattr(data, attribute)
    return bool(value) if isinstance(value, tuple) else value is not None


def _matching(data: ContactData, dedupe_on: str) -> Identifiers:
    """The identifiers to find the existing contact by: all, or only ``dedupe_on``'s."""
    every = identifiers_of(data)
    if not dedupe_on:
        return every
    if dedupe_on.strip().lower() == "email_or_sms":  # the email first, then the phone
        return Identifiers(email=every.email, phone=every.phone)
    column = dedupe_column(dedupe_on)
    if column is None:
        raise InvalidArgument.from_violations([Violation(
            "dedupeOn", f"{dedupe_on!r} is not one of email, sms, externalCustomerId, "
            "contactKey, id")])
    kind = {"email_key": "email", "id": "contact_id"}.get(column, column)
    return Identifiers(**{kind: getattr(every, kind)})


async def subscribe(conn: AsyncConnection, *, account_id: int, form: object,
                    groups: list[str], dedupe_on: str = "") -> Subscribed:
    """Create or update the form's contact and add it to ``groups``; see the module doc."""
    fields = await load_field_definitions(conn, account_id=account_id)
    data = parse_api_form(form, fields=fields, field_prefix="contact")
    if data.contact_id is None and not any(_has(data, a) for a in _IDENTIFYING):
        raise InvalidArgument.from_violations([Violation(
            "contact.channels", "is required: a subscriber needs an email, a phone or "
            "another channel")])
    existing = await find_contact_id(conn, account_id=account_id,
                                     identifiers=_matching(data, dedupe_on))
    if data.contact_id is not None and existing is None:
        raise NotFound(f"no contact with id {data.contact_id} in this account")
    if existing is None:
        if "confirmed" not in data.present:
            data = replace(data, confirmed=False, present=data.present | {"confirmed"})
        contact_id = await upsert_contact(conn, account_id=account_id, data=data,
                                          source=SOURCE, fields=fields)
        created = True
    else:
        current = await get_contact(conn, account_id=account_id, contact_id=existing)
        kept = {a for a in CHANNEL_ATTRIBUTES if current is not None and _has(current.data, a)}
        change = replace(data, contact_id=existing, present=data.present - kept)
        contact_id = await upsert_contact(conn, account_id=account_id, data=change,
                                          source=SOURCE, fields=fields)
        created = False
    await add_to_groups(conn, account_id=account_id, contact_ids=[contact_id], names=groups)
    record = await get_contact(conn, account_id=account_id, contact_id=contact_id)
    assert record is not None
    return Subscribed(contact_id=contact_id, created=created, data=record.data)


def subscription_event(subscribed: Subscribed, *, form_type: str, groups: list[str]
                       ) -> EventInput:
    """The event a subscription emits: its contact's id and channels, the form and groups."""
    data = subscribed.data
    params = contact_params(subscribed.contact_id, data)
    if form_type:
        params.append(("formType", form_type))
    if groups:
        params.append(("groups", list(groups)))
    key = data.email or data.phone or str(subscribed.contact_id)
    return EventInput(event_type_key=CREATED_EVENT if subscribed.created else UPDATED_EVENT,
                      key_value=key, params=params)
