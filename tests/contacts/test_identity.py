"""Contact identifiers read from event params, their names matched ignoring case."""

from __future__ import annotations

import pytest

from server.contacts import Identifiers, identifiers_from_params
from server.contacts.identity import StoredIdentity, derive_key_value, owners_index, plan_link


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("contactId", "contact_id"),
        ("CONTACT_ID", "contact_id"),
        ("externalCustomerId", "external_customer_id"),
        ("Email", "email"),
        ("emailaddress", "email"),
        ("UserEmail", "email"),
        ("ContactEmail", "email"),
        ("Phone", "phone"),
        ("sms", "phone"),
        ("PhoneNumber", "phone"),
        ("pushToken", "push_token"),
        ("MobPushToken", "push_token"),
        ("ContactKey", "contact_key"),
        ("contact_key", "contact_key"),
    ],
)
def test_identifier_names_match_ignoring_case(name: str, kind: str) -> None:
    """Every documented identifier name is recognised in any case."""
    values = {
        "contact_id": "17",
        "external_customer_id": "AV13760",
        "email": "site@ukr.net",
        "phone": "380501234567",
        "push_token": "tok",
        "contact_key": "key",
    }
    found = identifiers_from_params([(name, values[kind])])
    assert found.lookup_order()[0][0] == kind


def test_seed_params_give_normalised_identifiers_in_priority_order() -> None:
    """The seed's params yield external id, email and E.164 phone, in lookup priority."""
    found = identifiers_from_params(
        [
            ("email", "site@ukr.net"),
            ("phone", "380501234567"),
            ("externalCustomerId", "AV13760"),
            ("json", {"profileInputs": []}),
        ]
    )
    assert found.lookup_order() == [
        ("external_customer_id", "AV13760"),
        ("email", "site@ukr.net"),
        ("phone", "+380501234567"),
    ]
    assert found.key_value() == "AV13760"


def test_contact_id_comes_first_and_contact_key_last() -> None:
    """Contact id outranks all; the contact key is looked up after the push token."""
    found = identifiers_from_params(
        [("ContactKey", "k"), ("pushToken", "t"), ("Contact_id", 5), ("Email", "a@b.ua")]
    )
    assert [kind for kind, _ in found.lookup_order()] == [
        "contact_id",
        "email",
        "push_token",
        "contact_key",
    ]
    assert found.key_value() == "5"


@pytest.mark.parametrize("blank", ["", "  ", "\u00a0\u2003", "null", "NuLL", None])
def test_blank_external_id_is_ignored(blank: object) -> None:
    """An external id of "", blanks, "null" or null is ignored, not an identifier."""
    found = identifiers_from_params([("externalCustomerId", blank), ("email", "a@b.ua")])
    assert found.external_customer_id is None
    assert found.invalid == ()
    assert found.key_value() == "a@b.ua"


def test_invalid_identifiers_are_reported_and_skipped() -> None:
    """A malformed email is reported with its param path; a later valid alias is used."""
    found = identifiers_from_params(
        [("Email", "not-an-email"), ("UserEmail", "u@b.ua"), ("Phone", "12ab")]
    )
    assert found.email == "u@b.ua"
    assert found.phone is None
    assert [v.field for v in found.invalid] == ["params[0].value", "params[2].value"]


def test_first_usable_param_of_a_kind_wins() -> None:
    """When a kind appears twice, the first valid value is the one used."""
    found = identifiers_from_params([("Email", "first@b.ua"), ("ContactEmail", "second@b.ua")])
    assert found.email == "first@b.ua"


def test_no_identifiers_means_no_key_value() -> None:
    """Params without identifiers give an empty lookup and no key value."""
    found = identifiers_from_params([("password", "12345678")])
    assert found == Identifiers()
    assert found.key_value() is None


SEED = [("email", "site@ukr.net"), ("phone", "380501234567"), ("externalCustomerId", "AV13760"),
        ("json", {"profileInputs": []})]


def test_the_key_is_taken_as_sent_and_the_lookup_normalised() -> None:
    """The key keeps the sender's spelling; lookup uses the normalised, case-free email."""
    found = identifiers_from_params([("Email", " Site@UKR.NET "), ("SMS", "+38 (050) 123-45-67")])
    assert found.key_value() == "Site@UKR.NET"
    assert found.lookup_keys() == [("email", "site@ukr.net"), ("phone", "+380501234567")]
    assert derive_key_value([("Email", " Site@UKR.NET ")]) == ("Site@UKR.NET", "Email")


def test_plan_attaches_what_the_found_contact_lacks() -> None:
    """Found by email, the seed event adds the external id and phone the contact lacks."""
    contact = StoredIdentity(contact_id=7, email_key="site@ukr.net")
    plan = plan_link(identifiers_from_params(SEED), owners_index([contact]), create=True)
    assert (plan.contact_id, plan.matched_by, plan.create) == (7, "email", False)
    assert plan.attach == (("external_customer_id", "AV13760"), ("phone", "+380501234567"))
    assert plan.notes == ()


def test_plan_never_overwrites_and_says_why() -> None:
    """A different value on the contact, or one another contact holds, is a conflict note."""
    contact = StoredIdentity(contact_id=7, email_key="site@ukr.net", external_customer_id="AV1")
    other = StoredIdentity(contact_id=8, phone="+380501234567")
    plan = plan_link(identifiers_from_params(SEED), owners_index([contact, other]), create=True)
    assert plan.contact_id == 7 and plan.attach == ()
    assert [(n.status, n.field) for n in plan.notes] == [
        ("CONFLICT", "params[2].value"), ("CONFLICT", "params[1].value")]
    assert '"AV1"' in plan.notes[0].message and "contact 8" in plan.notes[1].message


def test_plan_creates_when_nothing_is_found_and_notes_invalid_and_unknown_ids() -> None:
    """No owner: create (if the type allows); invalid values and unknown ids are noted."""
    ids = identifiers_from_params([("contactId", 99), ("email", "bad@"), ("phone", "380501234567")])
    plan = plan_link(ids, {}, create=True)
    assert plan.contact_id is None and plan.create
    assert [n.status for n in plan.notes] == ["INVALID", "NOT_FOUND"]
    assert not plan_link(ids, {}, create=False).create
    assert not plan_link(identifiers_from_params([("contactId", 99)]), {}, create=True).create


def test_push_tokens_are_added_beside_the_contacts_own() -> None:
    """A contact may hold several push tokens: a new unowned one is attached."""
    contact = StoredIdentity(contact_id=3, phone="+380501234567", push_tokens=frozenset({"a"}))
    ids = identifiers_from_params([("phone", "380501234567"), ("pushToken", "b")])
    assert plan_link(ids, owners_index([contact]), create=True).attach == (("push_token", "b"),)
