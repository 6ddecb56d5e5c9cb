"""The workflow engine's one door to contacts storage (``server.contacts.store``): the
contact a run is about, as the blocks see it, and the contact Task blocks' writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts import (
    ContactValidationError,
    Identifiers,
    identifiers_from_params,
    parse_event_form,
    store,
)
from server.contacts.fields_store import load_field_definitions
from server.contacts.record import ContactRecord
from server.errors import NotFound
from server.workflows.runtime import ContactInfo, StepFailed

SOURCE = "workflow"


def _info(rec: ContactRecord) -> ContactInfo:
    fields = {k: v for k, v in rec.to_api_dict().items() if k != "id"}
    return ContactInfo(contact_id=int(rec.id), email=rec.email, phone=rec.phone,
                       time_zone=rec.time_zone,
                       subscribed=rec.status not in ("unsubscribed", "blacklisted"),
                       blacklisted=rec.status == "blacklisted", fields=fields)


async def contact_info(conn: AsyncConnection, *, account_id: int, contact_id: int | None
                       ) -> ContactInfo | None:
    if contact_id is None:
        return None
    return (await contact_infos(conn, account_id=account_id,
                                contact_ids=[contact_id])).get(contact_id)


async def contact_infos(conn: AsyncConnection, *, account_id: int, contact_ids: Sequence[int]
                        ) -> dict[int, ContactInfo]:
    """``contact_info`` of many contacts in one read (those the account has), by id."""
    records = await store.get_contacts(conn, account_id=account_id, contact_ids=contact_ids)
    return {int(rec.id): _info(rec) for rec in records}


async def contact_by_email(conn: AsyncConnection, *, account_id: int, email: str
                           ) -> ContactInfo | None:
    return (await contacts_by_email(conn, account_id=account_id, emails=[email])).get(email)


async def contacts_by_email(conn: AsyncConnection, *, account_id: int, emails: Sequence[str]
                            ) -> dict[str, ContactInfo]:
    """``contact_by_email`` of many addresses in two reads; addresses with no contact are
    left out."""
    found = await store.find_contact_ids(
        conn, account_id=account_id,
        identifiers=[identifiers_from_params([("email", e)]) for e in emails])
    infos = await contact_infos(conn, account_id=account_id,
                                contact_ids=[c for c in found if c is not None])
    return {e: infos[c] for e, c in zip(emails, found, strict=True)
            if c is not None and c in infos}


async def write_contact(conn: AsyncConnection, *, account_id: int, create: bool,
                        form: dict[str, Any]) -> int | None:
    """Create-or-update (``create``) or update-only; None when updating an unknown contact."""
    fields = await load_field_definitions(conn, account_id=account_id)
    try:
        data = parse_event_form(form, fields=fields, field_prefix="json", creating=create)
    except ContactValidationError as exc:
        raise StepFailed(f"contact data is not valid: {exc}") from None
    if create:
        try:
            return int(await store.upsert_contact(conn, account_id=account_id, data=data,
                                                  source=SOURCE, fields=fields))
        except (ContactValidationError, NotFound) as exc:
            raise StepFailed(f"contact not written: {exc}") from None
    found = await store.update_contact(conn, account_id=account_id, data=data)
    return None if found is None else int(found)


__all__ = ["Identifiers", "contact_by_email", "contact_info", "contact_infos",
           "contacts_by_email", "write_contact"]
