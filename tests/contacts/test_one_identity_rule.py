"""Ingestion, the worker and the workflow simulator apply the one identity rule: for the same
params they derive the same key and find (or create) the same contact, with the same notes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from server.codec.jsonbody import event_from_json
from server.contacts import ContactData
from server.contacts.events import link_event_contact
from server.contacts.store import upsert_contact
from server.db.models import Event, EventType, table_of, utcnow
from server.errors import InvalidArgument, Violation
from server.eventtypes.rules import AccountRules
from server.ingest.accept import Acceptance, accept
from server.templating.pool import RenderPool
from server.workflows.simulator import simulate
from tests.contacts.storage import Db
from tests.core.seed import ABANDONED_CART, CREATE_CONTACT
from workers.events import DispatchedEvent

FLOW = {"name": "keys", "trigger": {"eventTypeKey": "seen"}, "start": "wait",
        "blocks": [{"id": "wait", "type": "timer", "duration": "PT1M"}]}


async def _no_templates(template_id: int) -> tuple[str, str, str]:
    raise AssertionError("the key tests use no template")


class _NoContactJson:
    async def violations(self, name: str, value: Any, *, account_id: int) -> list[Violation]:
        raise AssertionError("the key tests send no contactJson")


class _NoRequiredParams:
    def cached(self, account_id: int) -> AccountRules:
        return AccountRules({}, frozenset())

    async def load(self, account_id: int) -> AccountRules:
        return AccountRules({}, frozenset())


ACCEPTANCE = Acceptance(max_bytes=1 << 20, contact_json=_NoContactJson(),
                        event_types=_NoRequiredParams())


async def ingest_key(doc: dict[str, Any]) -> str:
    """The keyValue real ingestion stores for a JSON event body."""
    event = await accept(event_from_json(doc), account_id=1, using=ACCEPTANCE)
    return event.key_value


async def simulate_events(events: list[dict[str, Any]],
                          contacts: list[Any] | None = None) -> list[dict[str, Any]]:
    """The simulator's ``events``: each one's ``keyValue``, ``contactId``, ``identityNotes``."""
    # No template is rendered, so the pool never starts a process.
    out = await simulate(definition=FLOW, events=events, contacts=contacts,
                         templates=_no_templates, renderer=RenderPool(),
                         sender="sim@example.com", account_id=1, acceptance=ACCEPTANCE)
    return list(out["events"])


async def simulated(doc: dict[str, Any], contacts: list[Any] | None = None) -> dict[str, Any]:
    """The simulator's view of one event."""
    (event,) = await simulate_events([doc], contacts)
    return event


async def simulated_key(doc: dict[str, Any]) -> str:
    """The ``${key}`` a simulated run of the same body sees."""
    return str((await simulated(doc))["keyValue"])


@pytest.mark.parametrize(("params", "key"), [
    ([{"name": "email", "value": "Site@UKR.NET"}], "Site@UKR.NET"),
    ([{"name": "Email", "value": "not-an-email"}, {"name": "phone", "value": "380501234567"}],
     "not-an-email"),
    ([{"name": "phone", "value": "+38 (050) 123-45-67"}], "+38 (050) 123-45-67"),
    ([{"name": "externalCustomerId", "value": " null "}, {"name": "SMS", "value": 380501234567}],
     "380501234567"),
    ([{"name": "PushToken", "value": "  tok  "}, {"name": "CONTACT_ID", "value": 17.0}], "17"),
    ([{"name": "email", "value": "  "}, {"name": "UserEmail", "value": "u@b.ua"}], "u@b.ua"),
])
async def test_ingest_and_simulator_derive_the_issue_examples_alike(
        params: list[dict[str, Any]], key: str) -> None:
    """The examples of issue 10: the key is the first identifier as sent, trimmed, in both."""
    doc = {"eventTypeKey": "seen", "params": params}
    assert await ingest_key(doc) == key
    assert await simulated_key(doc) == key


# Stored contacts the generated params may name; the same ones are given to the simulator.
CONTACTS: list[dict[str, Any]] = [
    {"email": "site@ukr.net", "phone": "+380501234567", "externalCustomerId": "AV13760"},
    {"email": "Other@ukr.net", "contactKey": "K2"},
    {"phone": "+380671112233", "pushTokens": ["tok-3"]},
    {"externalCustomerId": "AV2"},
]
ALIASES = {
    "contact_id": ["contactId", "Contact_id"],
    "external": ["externalCustomerId"],
    "email": ["email", "EmailAddress", "UserEmail", "ContactEmail"],
    "phone": ["phone", "SMS", "PhoneNumber"],
    "push": ["pushToken", "MobPushToken"],
    "contact_key": ["contactKey", "Contact_key"],
}
VALUES: dict[str, list[Any]] = {
    "contact_id": [1, 2.0, "3", " 4 ", 999999, 0, -1, "abc", True, None],
    "external": ["AV13760", " AV13760 ", "AV2", "NEW-1", "", "  ", "null", "NuLL", None, 13760],
    "email": ["site@ukr.net", "Site@UKR.NET", " site@ukr.net ", "other@UKR.net", "new@ukr.net",
              "not-an-email", "site@ukr", "", 5, None, ["site@ukr.net"]],
    "phone": ["380501234567", "+380501234567", "+38 (050) 123-45-67", "00380501234567",
              380501234567, 380501234567.0, "+380 67 111 22 33", "380991234567", "0501234567",
              "12ab", "", 3.5],
    "push": ["tok-3", "tok-new", " tok-3 ", "", 7, False],
    "contact_key": ["K2", "k2", "NEW-K", "", 2],
}
OTHER = st.sampled_from(["items", "password", "json", "emails", "phone2"])


def _case(name: str) -> st.SearchStrategy[str]:
    """``name`` with each letter in either case (identifier names ignore case)."""
    return st.tuples(*(st.sampled_from(sorted({c.lower(), c.upper()})) for c in name)).map(
        "".join)


_identifier = st.sampled_from(sorted(ALIASES)).flatmap(lambda kind: st.tuples(
    st.sampled_from(ALIASES[kind]).flatmap(_case), st.sampled_from(VALUES[kind])))
_other = st.tuples(OTHER, st.one_of(st.none(), st.integers(-(2**53), 2**53), st.text(max_size=5)))
_params = st.lists(st.one_of(_identifier, _identifier, _other), max_size=6)


def _doc(params: list[tuple[str, Any]], key_value: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"eventTypeKey": "seen",
                           "params": [{"name": n, "value": v} for n, v in params]}
    if key_value is not None:
        doc["keyValue"] = key_value
    return doc


@dataclass
class World:
    """The stored contacts (ids as the database gave them) and the event type to link on."""

    db: Db
    sim_contacts: list[dict[str, Any]]
    type_id: int


@pytest.fixture(scope="module")
async def world(db: Db) -> AsyncIterator[World]:
    sim_contacts = []
    async with db.engine.begin() as conn:
        for contact in CONTACTS:
            data = ContactData(
                email=contact.get("email"), phone=contact.get("phone"),
                external_customer_id=contact.get("externalCustomerId"),
                contact_key=contact.get("contactKey"),
                push_tokens=tuple(contact.get("pushTokens", ())),
                present=frozenset({"email", "phone", "external_customer_id", "contact_key",
                                   "push_tokens"}))
            contact_id = await upsert_contact(conn, account_id=db.account_id, data=data,
                                              source="api")
            sim_contacts.append({"id": contact_id, **contact})
        type_id = (await conn.execute(insert(table_of(EventType)).values(
            account_id=db.account_id, key="seen", create_contacts=True, created_at=utcnow())
            .returning(table_of(EventType).c.id))).scalar_one()
    yield World(db=db, sim_contacts=sim_contacts, type_id=int(type_id))


async def worker_link(world: World, doc: dict[str, Any], key_value: str
                      ) -> tuple[int | None, list[dict[str, str]]]:
    """What the worker's processor links the stored event to, in a transaction rolled back
    afterwards so every example meets the same stored contacts."""
    events = table_of(Event)
    async with world.db.engine.connect() as conn, conn.begin() as tx:
        event_id = (await conn.execute(insert(events).values(
            account_id=world.db.account_id, event_type_id=world.type_id, key_value=key_value,
            body=orjson.dumps(doc).decode(), received_at=utcnow()).returning(events.c.id)
        )).scalar_one()
        await link_event_contact(conn, DispatchedEvent(
            id=int(event_id), account_id=world.db.account_id, event_type_key="seen",
            key_value=key_value, params=[(p["name"], p["value"]) for p in doc["params"]],
            body=doc, received_at=utcnow(), create_contacts=True), {})
        row = (await conn.execute(select(events.c.contact_id, events.c.identity_notes)
                                  .where(events.c.id == event_id))).one()
        await tx.rollback()
    return row.contact_id, orjson.loads(row.identity_notes or "[]")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=_params, key_value=st.none() | st.sampled_from(["k1", " spaced ", "Site@UKR.NET"]))
@example(params=[("EMAIL", "Site@UKR.NET")], key_value=None)
@example(params=[("email", "not-an-email"), ("phone", "380501234567")], key_value=None)
@example(params=[("sms", "+38 (050) 123-45-67")], key_value=None)
@example(params=[("email", "site@ukr.net"), ("phone", "+380671112233"),
                 ("externalCustomerId", "NEW-1")], key_value=None)
@example(params=[("Email", "x"), ("email", "x"), ("email", "site@ukr.net")], key_value=None)
async def test_ingest_worker_and_simulator_agree(
        world: World, params: list[tuple[str, Any]], key_value: str | None) -> None:
    """For any params: the key ingest stores is the simulator's, and the worker and the
    simulator link the event to the same contact (or both create one) with the same notes."""
    doc = _doc(params, key_value)
    try:
        key = await ingest_key(doc)
    except InvalidArgument as refused:
        # Ingest refuses it (duplicate names, no key at all): no event exists to compare.
        assert {v.field for v in refused.violations} <= {
            "keyValue", *(f"params[{i}].name" for i in range(len(params)))}
        return
    sim = await simulated(doc, world.sim_contacts)
    assert sim["keyValue"] == key
    contact_id, notes = await worker_link(world, doc, key)
    known = {c["id"] for c in world.sim_contacts}
    if contact_id in known or contact_id is None:
        assert sim["contactId"] == contact_id
    else:  # both created a contact of their own
        assert sim["contactId"] not in known and sim["contactId"] is not None
    assert sim.get("identityNotes", []) == notes


async def test_simulated_events_enrich_their_contact_as_the_worker_does() -> None:
    """In one simulation the cart event creates the contact, the seed's create-contact event
    attaches its external id and phone, and an event carrying only the phone finds it."""
    events = await simulate_events([
        ABANDONED_CART, CREATE_CONTACT,
        {"eventTypeKey": "seen", "params": [{"name": "SMS", "value": "+38 (050) 123-45-67"}]},
        {"eventTypeKey": "seen", "params": [{"name": "email", "value": "site@ukr.net"},
                                            {"name": "externalCustomerId", "value": "AV1"}]}])
    assert [e["contactId"] for e in events] == [1, 1, 1, 1]
    assert [e["keyValue"] for e in events] == ["site@com.net", "site@com.net",
                                               "+38 (050) 123-45-67", "AV1"]
    (note,) = events[3]["identityNotes"]
    assert note["status"] == "CONFLICT" and '"AV13760"' in note["message"]


@pytest.mark.parametrize(("contacts", "field"), [
    ([{"email": "a@b.ua"}], "contacts[0].id"),
    ([{"id": 1}, {"id": 2, "phone": "call me"}], "contacts[1].phone"),
    ([{"id": 1, "email": "no-at-sign"}], "contacts[0].email"),
    ([{"id": 1, "pushTokens": "tok"}], "contacts[0].pushTokens"),
    (["a@b.ua"], "contacts[0]"),
])
async def test_simulator_contacts_are_validated(contacts: list[Any], field: str) -> None:
    """A simulator contact with a bad id or identifier is refused, naming the field."""
    with pytest.raises(InvalidArgument) as refused:
        await simulated({"eventTypeKey": "seen", "keyValue": "k"}, contacts)
    assert [v.field for v in refused.value.violations] == [field]
