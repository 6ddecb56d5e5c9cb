"""The workflow engine's one door to contacts storage (``server.contacts.store``): the
contact a run is about, as the blocks see it, and the contact Task blocks' writes."""

from __future__ import annotations

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
from server.errors import NotFound
from server.workflows.runtime import ContactInfo, StepFailed

SOURCE = "workflow"


async def contact_info(conn: AsyncConnection, *, account_id: int, contact_id: int | None
                       ) -> ContactInfo | None:
    if contact_id is None:
        return None
    rec = await store.get_contact(conn, account_id=account_id, contact_id=contact_id)
    if rec is None:
        return None
    fields = {k: v for k, v in rec.to_api_dict().items() if k != "id"}
    return ContactInfo(contact_id=contact_id, email=rec.email, phone=rec.phone,
                       time_zone=rec.time_zone,
                       subscribed=rec.status not in ("unsubscribed", "blacklisted"),
                       blacklisted=rec.status == "blacklisted", fields=fields)


async def contact_by_email(conn: AsyncConnection, *, account_id: int, email: str
                           ) -> ContactInfo | None:
    found = await store.find_contact_id(conn, account_id=account_id,
                                        identifiers=identifiers_from_params([("email", email)]))
    if found is None:
        return None
    return await contact_info(conn, account_id=account_id, contact_id=int(found))


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


__all__ = ["Identifiers", "contact_by_email", "contact_info", "write_contact"]
