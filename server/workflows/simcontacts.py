"""The workflow simulator's contacts: what blocks read of them, and the identifiers events
find them by, linked with the same rule as the worker (``server.contacts.identity``).

A simulated event is linked as in an event type that creates contacts (the default): the
contact holding its highest-priority identifier, enriched with the identifiers it lacks,
or a new contact when none holds any. Nothing is stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from server.contacts.builder import read_positive_id
from server.contacts.errors import InvalidValue
from server.contacts.identity import (
    Identifiers,
    IdentityNote,
    StoredIdentity,
    find_owner,
    identifiers_from_params,
    owners_index,
    plan_link,
)
from server.contacts.validation import (
    email_key,
    normalise_contact_key,
    normalise_email,
    normalise_external_id,
    normalise_phone,
)
from server.errors import InvalidArgument, Violation
from server.workflows.runtime import ContactInfo

# A simulated contact's fields: (API name, ContactInfo/identity attribute, normaliser).
_IDENTIFIERS: tuple[tuple[str, str, Callable[[object], str | None]], ...] = (
    ("email", "email", normalise_email),
    ("phone", "phone", normalise_phone),
    ("externalCustomerId", "external_customer_id", normalise_external_id),
    ("contactKey", "contact_key", normalise_contact_key),
)


class SimContacts:
    """Contacts given to a simulation (``{"id", "email", "phone", "externalCustomerId",
    "contactKey", "pushTokens", "timeZone", "status"}``) and those its events create."""

    def __init__(self, given: Iterable[Any]) -> None:
        self.info: dict[int, ContactInfo] = {}
        self._identities: dict[int, StoredIdentity] = {}
        out: list[Violation] = []
        for index, raw in enumerate(given):
            self._add_given(f"contacts[{index}]", raw, out)
        if out:
            raise InvalidArgument.from_violations(out)

    def _add_given(self, where: str, raw: Any, out: list[Violation]) -> None:
        if not isinstance(raw, dict):
            out.append(Violation(where, "must be an object such as {\"id\": 1, \"email\": ...}"))
            return
        try:
            contact_id = read_positive_id(raw.get("id"))
        except InvalidValue as error:
            out.append(Violation(f"{where}.id", error.reason))
            return
        values: dict[str, str | None] = {}
        for name, attribute, normalise in _IDENTIFIERS:
            try:
                values[attribute] = normalise(raw.get(name))
            except InvalidValue as error:
                out.append(Violation(f"{where}.{name}", error.reason))
        tokens = raw.get("pushTokens") or []
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            out.append(Violation(f"{where}.pushTokens", "must be a list of token strings"))
            tokens = []
        status = str(raw.get("status", "active"))
        self.info[contact_id] = ContactInfo(
            contact_id=contact_id, email=values.get("email"), phone=values.get("phone"),
            time_zone=raw.get("timeZone"), subscribed=status == "active",
            blacklisted=status == "blacklisted")
        email = values.get("email")
        self._identities[contact_id] = StoredIdentity(
            contact_id=contact_id, email_key=email_key(email) if email else None,
            phone=values.get("phone"), external_customer_id=values.get("external_customer_id"),
            contact_key=values.get("contact_key"), push_tokens=frozenset(tokens))

    def link(self, identifiers: Identifiers) -> tuple[int | None, tuple[IdentityNote, ...]]:
        """The contact of an event, as ``server.contacts.store.link_contact`` finds it."""
        plan = plan_link(identifiers, owners_index(self._identities.values()), create=True)
        if plan.create:
            contact_id = self._new_id()
            self.info[contact_id] = ContactInfo(contact_id=contact_id, email=None, phone=None,
                                                time_zone=None, subscribed=True,
                                                blacklisted=False)
            attach = identifiers.lookup_order()
        elif plan.contact_id is not None:
            contact_id, attach = plan.contact_id, list(plan.attach)
        else:
            return None, plan.notes
        identity = self._identities.get(contact_id) or StoredIdentity(contact_id=contact_id)
        self._identities[contact_id] = identity.with_identifiers(attach)
        given = dict(attach)
        info = self.info[contact_id]
        self.info[contact_id] = dataclasses.replace(
            info, email=_text(given.get("email"), info.email),
            phone=_text(given.get("phone"), info.phone))
        return contact_id, plan.notes

    def by_email(self, email: str | None) -> ContactInfo | None:
        """The contact holding this email (compared ignoring case), if any."""
        if not email:
            return None
        found = find_owner(identifiers_from_params([("email", email)]),
                           owners_index(self._identities.values()))
        return self.info.get(found[1].contact_id) if found else None

    def write(self, *, create: bool, form: dict[str, Any], run_contact_id: int | None
              ) -> int | None:
        """A contact Task block: the contact of the form's email, else the run's contact."""
        email = form.get("email")
        found = self.by_email(email) if isinstance(email, str) else None
        if found is None and run_contact_id is not None:
            found = self.info.get(run_contact_id)
        if found is None and not create:
            return None
        contact_id = found.contact_id if found else self._new_id()
        phone = str(form.get("sms") or "") or (found.phone if found else None)
        email = email if isinstance(email, str) else (found.email if found else None)
        self.info[contact_id] = ContactInfo(
            contact_id=contact_id, email=email, phone=phone,
            time_zone=form.get("timeZone") or (found.time_zone if found else None),
            subscribed=True, blacklisted=False, fields={"form": form})
        identity = self._identities.get(contact_id) or StoredIdentity(contact_id=contact_id)
        written = identifiers_from_params([("email", email), ("phone", phone)])
        self._identities[contact_id] = identity.with_identifiers(written.lookup_order())
        return contact_id

    def _new_id(self) -> int:
        return max(self.info, default=0) + 1


def _text(value: object, default: str | None) -> str | None:
    return value if isinstance(value, str) else default
