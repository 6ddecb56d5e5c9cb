"""The contact store on a real database: create-or-update, update-only, identity, isolation."""

from __future__ import annotations

import asyncio

import pytest

from server.contacts import ContactValidationError, parse_api_form, parse_event_form
from server.contacts.fields_store import load_field_definitions
from server.contacts.identity import Identifiers
from server.contacts.store import (
    ContactSearch,
    delete_contact,
    find_contact_id,
    get_contact,
    search_contacts,
    set_contact_status,
    update_contact,
    upsert_contact,
)
from server.errors import Conflict, NotFound
from tests.contacts.storage import Db, define

SEED_CONTACT = {
    "email": "site@ukr.net",
    "phone": "380501234567",
    "externalCustomerId": "AV13760",
    "profileInputs": [{"profileInputId": 10001, "value": "2020-11-23"}],
}


@pytest.fixture(scope="module", autouse=True)
async def birthday(db: Db) -> None:
    await define(db, {"id": 10001, "name": "Birthday", "type": "date"})


async def test_seed_create_or_update_stores_phone_external_id_and_field(db: Db) -> None:
    """The seed's contact given to upsert_contact is stored with E.164 phone, id and date."""
    async with db.engine.begin() as conn:
        fields = await load_field_definitions(conn, account_id=db.account_id)
        data = parse_event_form(SEED_CONTACT, fields=fields)
        contact_id = await upsert_contact(conn, account_id=db.account_id, data=data, source="workflow")
        again = await upsert_contact(conn, account_id=db.account_id, data=data, source="workflow")
        record = await get_contact(conn, account_id=db.account_id, contact_id=contact_id)
    assert again == contact_id and record is not None
    assert (record.email, record.phone, record.status) == ("site@ukr.net", "+380501234567", "active")
    body = record.to_api_dict()
    assert body["externalCustomerId"] == "AV13760"
    assert body["fields"] == [{"id": 10001, "value": "2020-11-23"}]
    assert {"type": "sms", "value": "+380501234567"} in body["channels"]  # type: ignore[operator]


async def test_update_only_skips_unknown_and_keeps_absent_attributes(db: Db) -> None:
    """update_contact returns None for an unknown contact and changes only given attributes."""
    async with db.engine.begin() as conn:
        fields = await load_field_definitions(conn, account_id=db.account_id)
        unknown = parse_event_form({"email": "nobody@example.com", "firstname": "No"}, fields=fields)
        assert await update_contact(conn, account_id=db.account_id, data=unknown) is None
        assert await find_contact_id(conn, account_id=db.account_id,
                                     identifiers=Identifiers(email="nobody@example.com")) is None
        change = parse_event_form({"externalCustomerId": "AV13760", "firstname": "Ivan",
                                   "timeZone": "Europe/Kyiv"}, fields=fields)
        contact_id = await update_contact(conn, account_id=db.account_id, data=change)
        assert contact_id is not None
        record = await get_contact(conn, account_id=db.account_id, contact_id=contact_id)
    assert record is not None
    assert (record.first_name, record.time_zone, record.email) == ("Ivan", "Europe/Kyiv", "site@ukr.net")
    assert record.fields == {10001: "2020-11-23"}


async def test_email_identity_ignores_case(db: Db) -> None:
    """An address differing only in case finds the same contact."""
    async with db.engine.begin() as conn:
        found = await find_contact_id(conn, account_id=db.account_id,
                                      identifiers=Identifiers(email="SITE@UKR.NET"))
        results, total = await search_contacts(conn, account_id=db.account_id,
                                               search=ContactSearch(email="Site@Ukr.Net"))
    assert found is not None and [r.id for r in results] == [found] and total == 1


async def test_identifier_of_another_contact_is_a_conflict(db: Db) -> None:
    """Giving one contact the phone another holds is refused and writes nothing."""
    async with db.engine.begin() as conn:
        fields = await load_field_definitions(conn, account_id=db.account_id)
        other = parse_api_form({"channels": [{"type": "email", "value": "other@example.com"}]},
                               fields=fields)
        other_id = await upsert_contact(conn, account_id=db.account_id, data=other, source="api")
    with pytest.raises(Conflict, match="belongs to contact"):
        async with db.engine.begin() as conn:
            steal = parse_api_form({"id": other_id, "firstName": "Thief",
                                    "channels": [{"type": "sms", "value": "+380501234567"}]},
                                   fields=fields)
            await upsert_contact(conn, account_id=db.account_id, data=steal, source="api")
    async with db.engine.connect() as conn:
        record = await get_contact(conn, account_id=db.account_id, contact_id=other_id)
    assert record is not None and record.first_name is None and record.phone is None


async def test_required_field_is_enforced_only_for_new_contacts(db: Db) -> None:
    """With definitions given, a new contact lacking a required field is refused."""
    required = await define(db, {"name": "Loyalty card", "type": "text", "required": True})
    async with db.engine.begin() as conn:
        fields = await load_field_definitions(conn, account_id=db.account_id)
        data = parse_api_form({"channels": {"type": "email", "value": "new@example.com"}},
                              fields=fields)
        with pytest.raises(ContactValidationError, match="Loyalty card"):
            await upsert_contact(conn, account_id=db.account_id, data=data, source="api",
                                 fields=fields)
        # An existing contact may be updated without it.
        existing = parse_event_form({"email": "site@ukr.net", "lastname": "Petrenko"}, fields=fields)
        assert await upsert_contact(conn, account_id=db.account_id, data=existing, source="api",
                                    fields=fields)
    assert required.id is not None and required.id > 10001


async def test_accounts_do_not_see_each_others_contacts(db: Db) -> None:
    """The same email in two accounts is two contacts; neither account reads the other's."""
    async with db.engine.begin() as conn:
        data = parse_event_form({"email": "site@ukr.net"}, fields={})
        theirs = await upsert_contact(conn, account_id=db.other_account_id, data=data, source="api")
        ours = await find_contact_id(conn, account_id=db.account_id,
                                     identifiers=Identifiers(email="site@ukr.net"))
        assert ours is not None and ours != theirs
        assert await get_contact(conn, account_id=db.account_id, contact_id=theirs) is None
        with pytest.raises(NotFound):
            await delete_contact(conn, account_id=db.account_id, contact_id=theirs,
                                 remember=True)
        with pytest.raises(NotFound):
            await set_contact_status(conn, account_id=db.account_id, contact_id=theirs,
                                     status="blacklisted")


async def test_concurrent_creations_of_one_new_contact_make_one(db: Db) -> None:
    """Twenty concurrent upserts of the same new contact leave exactly one contact."""
    data = parse_event_form({"email": "race@example.com", "firstname": "Race"}, fields={})

    async def one() -> int:
        async with db.engine.begin() as conn:
            return await upsert_contact(conn, account_id=db.account_id, data=data, source="event")

    # Every transaction ends before the test does, even when one fails: one left open
    # would hold the schema that the module's teardown drops.
    results = await asyncio.gather(*(one() for _ in range(20)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise failures[0]
    ids = [r for r in results if isinstance(r, int)]
    async with db.engine.connect() as conn:
        found, _ = await search_contacts(conn, account_id=db.account_id,
                                         search=ContactSearch(email="race@example.com"))
    assert len(set(ids)) == 1 and [r.id for r in found] == [ids[0]]


async def test_delete_and_status(db: Db) -> None:
    """A contact can be blacklisted, then deleted with its field values."""
    async with db.engine.begin() as conn:
        fields = await load_field_definitions(conn, account_id=db.account_id)
        data = parse_event_form({"email": "gone@example.com", "profileInputs": [
            {"profileInputId": 10001, "value": "23.11.2020"}]}, fields=fields)
        contact_id = await upsert_contact(conn, account_id=db.account_id, data=data, source="api")
        await set_contact_status(conn, account_id=db.account_id, contact_id=contact_id,
                                 status="blacklisted")
        record = await get_contact(conn, account_id=db.account_id, contact_id=contact_id)
        assert record is not None and record.status == "blacklisted"
        assert record.fields == {10001: "2020-11-23"}
        await delete_contact(conn, account_id=db.account_id, contact_id=contact_id, remember=True)
        assert await get_contact(conn, account_id=db.account_id, contact_id=contact_id) is None
