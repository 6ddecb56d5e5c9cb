"""Which contact an event belongs to: the one identity rule, as pure functions.

Ingestion, the worker's contact linking and the workflow simulator all call this module;
storage (``server.contacts.store``) only runs the queries it asks for.

- **Names.** Identifier params are recognised by name, ignoring case: ``contactId``/
  ``Contact_id``; ``externalCustomerId``; ``Email``/``EmailAddress``/``UserEmail``/
  ``ContactEmail``; ``Phone``/``SMS``/``PhoneNumber``; ``PushToken``/``MobPushToken``;
  ``ContactKey``/``Contact_key`` (``ALIASES``).
- **Blank external ids** (null, "", white space, "null" in any case) are no identifier.
- **The event key** (``derive_key_value``) stands in for a missing ``keyValue``: the first
  identifier in ``KEY_PRIORITY`` whose value is a non-blank string or a number, its value as
  sent, trimmed (a number without a trailing ``.0``). It is eSputnik's key, not a contact
  lookup: it is neither validated nor normalised.
- **Lookup identifiers** (``identifiers_from_params``): each kind's first param whose value
  is valid, normalised (email domain lower-cased and compared ignoring case, phone E.164);
  invalid ones are reported in ``invalid`` and never used.
- **Lookup priority** (``find_owner``): contact id, external id, email, phone, push token,
  then (our addition, being unique too) contact key.
- **Enrichment** (``plan_link``): the identifiers an event carries that its contact lacks
  are attached; a different value on the contact, or a value another contact holds, is a
  conflict that is reported and changes nothing.

``plan_link`` takes identifiers and an index of the stored contacts that hold them and
returns actions, so one event and a batch of events are decided alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from server.contacts import validation
from server.contacts.builder import read_positive_id
from server.contacts.errors import InvalidValue, describe_value, value_violation
from server.contacts.scalars import read_identifier
from server.contacts.validation import email_key, is_blank_external_id
from server.errors import Violation

__all__ = [
    "ALIASES",
    "KEY_PRIORITY",
    "LOOKUP_PRIORITY",
    "PARAM_NAMES",
    "IdentifierKind",
    "Identifiers",
    "IdentityNote",
    "LinkPlan",
    "LookupKey",
    "NoteStatus",
    "StoredIdentity",
    "derive_key_value",
    "find_owner",
    "identifier_kind",
    "identifiers_from_params",
    "is_blank_external_id",
    "owners_index",
    "plan_link",
]

IdentifierKind = Literal[
    "contact_id", "external_customer_id", "email", "phone", "push_token", "contact_key"
]
# A stored identifier as looked up: emails by ``email_key``, everything else as normalised.
LookupKey = tuple[IdentifierKind, int | str]
NoteStatus = Literal["CONFLICT", "INVALID", "NOT_FOUND"]

LOOKUP_PRIORITY: Final[tuple[IdentifierKind, ...]] = (
    "contact_id",
    "external_customer_id",
    "email",
    "phone",
    "push_token",
    "contact_key",
)
# The kinds eSputnik takes a missing keyValue from, in its order (no contact key).
KEY_PRIORITY: Final[tuple[IdentifierKind, ...]] = LOOKUP_PRIORITY[:5]
# How each kind is named in messages: eSputnik's param names.
PARAM_NAMES: Final[Mapping[IdentifierKind, str]] = {
    "contact_id": "contactId",
    "external_customer_id": "externalCustomerId",
    "email": "email",
    "phone": "phone",
    "push_token": "pushToken",
    "contact_key": "contactKey",
}
ALIASES: Final[Mapping[str, IdentifierKind]] = {
    "contactid": "contact_id",
    "contact_id": "contact_id",
    "externalcustomerid": "external_customer_id",
    "email": "email",
    "emailaddress": "email",
    "useremail": "email",
    "contactemail": "email",
    "phone": "phone",
    "sms": "phone",
    "phonenumber": "phone",
    "pushtoken": "push_token",
    "mobpushtoken": "push_token",
    "contactkey": "contact_key",
    "contact_key": "contact_key",
}
_SINGLE_VALUED: Final[tuple[IdentifierKind, ...]] = (
    "external_customer_id", "email", "phone", "contact_key")
_KEY_RANK: Final[Mapping[IdentifierKind, int]] = {kind: i for i, kind in enumerate(KEY_PRIORITY)}
_READERS: Final[Mapping[IdentifierKind, Callable[[object], object]]] = {
    "contact_id": read_positive_id,
    "external_customer_id": validation.normalise_external_id,
    "email": validation.normalise_email,
    "phone": validation.normalise_phone,
    "push_token": lambda value: read_identifier(value, max_chars=4096),
    "contact_key": validation.normalise_contact_key,
}


def identifier_kind(name: object) -> IdentifierKind | None:
    """The identifier a param name stands for (ignoring case), or ``None``."""
    return ALIASES.get(name.lower()) if isinstance(name, str) else None


def _key_text(kind: IdentifierKind, value: object) -> str:
    """A param value as eSputnik's key: trimmed text, or a number's text; "" if unusable."""
    if isinstance(value, str):
        if kind == "external_customer_id" and is_blank_external_id(value):
            return ""
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def derive_key_value(params: Iterable[tuple[str, object]]) -> tuple[str, str] | None:
    """The key a missing ``keyValue`` is taken from, and the name of its param, or ``None``."""
    best: tuple[str, str] | None = None
    best_rank = len(KEY_PRIORITY)
    for name, value in params:
        kind = ALIASES.get(name.lower()) if isinstance(name, str) else None
        if kind is None:
            continue
        rank = _KEY_RANK.get(kind, best_rank)
        if rank >= best_rank:
            continue
        text = _key_text(kind, value)
        if text:
            best, best_rank = (text, name), rank
            if rank == 0:
                break
    return best


@dataclass(frozen=True, kw_only=True)
class Identifiers:
    """Normalised contact identifiers of one event; ``invalid`` holds those that failed.

    ``key`` is the event key ``derive_key_value`` gives for the same params; ``sources``
    says which param (index, name) each identifier came from, for messages.
    """

    contact_id: int | None = None
    external_customer_id: str | None = None
    email: str | None = None
    phone: str | None = None
    push_token: str | None = None
    contact_key: str | None = None
    invalid: tuple[Violation, ...] = ()
    key: str | None = None
    sources: Mapping[IdentifierKind, tuple[int, str]] = field(default_factory=dict,
                                                              compare=False)

    def lookup_order(self) -> list[tuple[IdentifierKind, int | str]]:
        """The identifiers present, highest priority first; compare emails with ``email_key``."""
        found: list[tuple[IdentifierKind, int | str]] = []
        for kind in LOOKUP_PRIORITY:
            value = getattr(self, kind)
            if value is not None:
                found.append((kind, value))
        return found

    def lookup_keys(self) -> list[LookupKey]:
        """The identifiers present as stored contacts are searched by, highest priority first."""
        return [(kind, _lookup_key(kind, value)) for kind, value in self.lookup_order()]

    def key_value(self) -> str | None:
        """The event key to use when ``keyValue`` is missing (``derive_key_value``)."""
        return self.key

    def describe(self, kind: IdentifierKind) -> str:
        """``params[2].value "AV1" (externalCustomerId)``: where an identifier came from."""
        value = describe_value(getattr(self, kind))
        index, name = self.sources.get(kind, (-1, PARAM_NAMES[kind]))
        where = f"params[{index}].value" if index >= 0 else PARAM_NAMES[kind]
        return f"{where} {value} ({name})"

    def field_of(self, kind: IdentifierKind) -> str:
        index, _name = self.sources.get(kind, (-1, ""))
        return f"params[{index}].value" if index >= 0 else PARAM_NAMES[kind]


def identifiers_from_params(params: Sequence[tuple[str, object]]) -> Identifiers:
    """Read identifiers from ``(name, value)`` params; blank external ids count as absent."""
    values: dict[IdentifierKind, object] = {}
    sources: dict[IdentifierKind, tuple[int, str]] = {}
    invalid: list[Violation] = []
    for index, (name, value) in enumerate(params):
        kind = identifier_kind(name)
        if kind is None or kind in values:
            continue
        try:
            normalised = _READERS[kind](value)
        except InvalidValue as error:
            invalid.append(value_violation(path=f"params[{index}].value", value=value,
                                           reason=error.reason))
            continue
        if normalised is not None:
            values[kind] = normalised
            sources[kind] = (index, name)
    contact_id = values.get("contact_id")
    derived = derive_key_value(params)
    return Identifiers(
        contact_id=contact_id if isinstance(contact_id, int) else None,
        external_customer_id=_text(values.get("external_customer_id")),
        email=_text(values.get("email")),
        phone=_text(values.get("phone")),
        push_token=_text(values.get("push_token")),
        contact_key=_text(values.get("contact_key")),
        invalid=tuple(invalid),
        key=derived[0] if derived else None,
        sources=sources,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _lookup_key(kind: IdentifierKind, value: int | str) -> int | str:
    return email_key(value) if kind == "email" and isinstance(value, str) else value


@dataclass(frozen=True, kw_only=True)
class StoredIdentity:
    """The identifiers a stored contact holds (its email as ``email_key``).

    ``push_tokens`` holds the contact's tokens among those looked up, not necessarily all.
    """

    contact_id: int
    external_customer_id: str | None = None
    email_key: str | None = None
    phone: str | None = None
    contact_key: str | None = None
    push_tokens: frozenset[str] = frozenset()

    def lookup_keys(self) -> list[LookupKey]:
        """Every identifier of the contact as ``Identifiers.lookup_keys`` spells them."""
        found: list[LookupKey] = [("contact_id", self.contact_id)]
        for kind in _SINGLE_VALUED:
            value = self.holds(kind)
            if value is not None:
                found.append((kind, value))
        found += [("push_token", token) for token in sorted(self.push_tokens)]
        return found

    def with_identifiers(
        self, values: Iterable[tuple[IdentifierKind, int | str]]
    ) -> StoredIdentity:
        """This contact once the given identifiers are attached (``LinkPlan.attach``)."""
        single: dict[str, str] = {}
        tokens = set(self.push_tokens)
        for kind, value in values:
            if kind == "push_token":
                tokens.add(str(value))
            elif kind != "contact_id":
                single["email_key" if kind == "email" else kind] = str(_lookup_key(kind, value))
        return StoredIdentity(
            contact_id=self.contact_id,
            external_customer_id=single.get("external_customer_id", self.external_customer_id),
            email_key=single.get("email_key", self.email_key),
            phone=single.get("phone", self.phone),
            contact_key=single.get("contact_key", self.contact_key),
            push_tokens=frozenset(tokens))

    def holds(self, kind: IdentifierKind) -> int | str | None:
        """The contact's one value of a single-valued kind (``None`` for push tokens)."""
        if kind == "contact_id":
            return self.contact_id
        if kind == "email":
            return self.email_key
        if kind == "push_token":
            return None
        value: str | None = getattr(self, kind)
        return value


def owners_index(identities: Iterable[StoredIdentity]) -> dict[LookupKey, StoredIdentity]:
    """Each stored identifier mapped to the contact holding it (the first one, if repeated)."""
    index: dict[LookupKey, StoredIdentity] = {}
    for identity in identities:
        for key in identity.lookup_keys():
            index.setdefault(key, identity)
    return index


def find_owner(
    identifiers: Identifiers, owners: Mapping[LookupKey, StoredIdentity]
) -> tuple[IdentifierKind, StoredIdentity] | None:
    """The contact the identifiers name, in lookup priority, and the kind that found it."""
    for key in identifiers.lookup_keys():
        owner = owners.get(key)
        if owner is not None:
            return key[0], owner
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class IdentityNote:
    """Something about an event's identifiers that was not used, and why."""

    status: NoteStatus
    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"status": self.status, "field": self.field, "message": self.message}


@dataclass(frozen=True, kw_only=True, slots=True)
class LinkPlan:
    """What linking an event to its contact does.

    ``contact_id``: the stored contact found, or ``None``. ``create``: no contact was found
    and one is to be created from the event's identifiers. ``attach``: identifiers (kind,
    normalised value) to add to the found contact, each one it lacks and nobody holds.
    ``notes``: invalid identifiers and conflicts, to be kept on the event.
    """

    contact_id: int | None
    matched_by: IdentifierKind | None = None
    create: bool = False
    attach: tuple[tuple[IdentifierKind, int | str], ...] = ()
    notes: tuple[IdentityNote, ...] = ()


def plan_link(
    identifiers: Identifiers, owners: Mapping[LookupKey, StoredIdentity], *, create: bool
) -> LinkPlan:
    """Decide the contact of an event from its identifiers and the contacts holding them.

    ``owners`` must hold every stored contact that has any of ``identifiers``; ``create``
    says whether the event's type may create a missing contact.
    """
    notes = [IdentityNote(status="INVALID", field=v.field,
                          message=f"{v.message}; not used to identify the contact")
             for v in identifiers.invalid]
    found = find_owner(identifiers, owners)
    if found is None:
        if identifiers.contact_id is not None:
            notes.append(_unknown_id(identifiers, "no contact was linked by it"))
        creatable = any(kind != "contact_id" for kind, _ in identifiers.lookup_order())
        return LinkPlan(contact_id=None, create=create and creatable, notes=tuple(notes))
    matched_by, contact = found
    via = f"contact {contact.contact_id}, found by {PARAM_NAMES[matched_by]}"
    attach: list[tuple[IdentifierKind, int | str]] = []
    for kind, value in identifiers.lookup_order():
        key = _lookup_key(kind, value)
        owner = owners.get((kind, key))
        if owner is not None and owner.contact_id == contact.contact_id:
            continue
        if kind == "contact_id":
            notes.append(_unknown_id(identifiers, f"the event was linked to {via}"))
            continue
        held = contact.holds(kind)
        if held is not None:
            reason = f"{via}, has {PARAM_NAMES[kind]} {describe_value(held)}"
        elif owner is not None:
            reason = f"it belongs to contact {owner.contact_id}; {via}"
        else:
            attach.append((kind, value))
            continue
        notes.append(IdentityNote(
            status="CONFLICT", field=identifiers.field_of(kind),
            message=f"{identifiers.describe(kind)}: {reason}; nothing was changed"))
    return LinkPlan(contact_id=contact.contact_id, matched_by=matched_by, attach=tuple(attach),
                    notes=tuple(notes))


def _unknown_id(identifiers: Identifiers, outcome: str) -> IdentityNote:
    return IdentityNote(status="NOT_FOUND", field=identifiers.field_of("contact_id"),
                        message=f"{identifiers.describe('contact_id')}: no contact has this "
                                f"id in the account; {outcome}")
