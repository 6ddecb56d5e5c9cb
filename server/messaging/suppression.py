"""Who may be sent an email: one rule for workflows' Email blocks and API-sent messages.

- A blacklisted contact gets nothing, not even obligatory (transactional) email.
- An unsubscribed contact, or an address on the account's unsubscribed list, gets no
  marketing email; obligatory email still goes, as in eSputnik.
- API-sent messages skip unconfirmed contacts unless the call allows them
  (``allowUnconfirmed``, as eSputnik's smartsend); workflow messages are trigger messages,
  which eSputnik sends to unconfirmed contacts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.consent.unsubscribed import unsubscribed_among
from server.contacts.tables import CONTACTS
from server.contacts.validation import email_key

__all__ = ["AddressStanding", "address_standing", "refusal"]


@dataclass(frozen=True, slots=True)
class AddressStanding:
    """What the account knows of an address: its contact's status, and the list."""

    blacklisted: bool = False
    unsubscribed: bool = False
    unconfirmed: bool = False


def refusal(standing: AddressStanding, *, transactional: bool,
            allow_unconfirmed: bool = True) -> str | None:
    """Why this email must not be sent, or ``None`` when it may."""
    if standing.blacklisted:
        return "the recipient is blacklisted"
    if standing.unsubscribed and not transactional:
        return "the recipient is unsubscribed (a transactional email would still be sent)"
    if standing.unconfirmed and not allow_unconfirmed:
        return "the recipient has not confirmed the subscription (allowUnconfirmed is false)"
    return None


async def address_standing(conn: AsyncConnection, *, account_id: int, address: str
                           ) -> AddressStanding:
    """The standing of ``address`` in the account (its contact, if any, and the list)."""
    key = email_key(address)
    row = (await conn.execute(select(CONTACTS.c.status, CONTACTS.c.confirmed).where(and_(
        CONTACTS.c.account_id == account_id, CONTACTS.c.email_key == key)))).first()
    listed = bool(await unsubscribed_among(conn, account_id=account_id, emails=[address]))
    status = row.status if row is not None else "active"
    return AddressStanding(blacklisted=status == "blacklisted",
                           unsubscribed=listed or status == "unsubscribed",
                           unconfirmed=row is not None and row.confirmed is False)
