"""Subscription forms, the unsubscribed-address list and deletion by external id, replayed
as the public clients send them."""

from __future__ import annotations

from typing import Any

from tests.compat.conftest import dumps, replay
from tests.compat.helpers import events_of, scalar, unique_email
from tests.support import Stack


def ruby_subscribe(email: str, phone: str) -> str:
    """The Ruby client's exact body: the contact wrapped, groups and formType null."""
    return ('{"contact":{"channels":[{"type":"email","value":"' + email + '"},'
            '{"type":"sms","value":"' + phone + '"}]},"groups":null,"formType":null}')


async def test_ruby_subscribe_creates_an_unconfirmed_contact_and_answers_its_id(
        compat: Stack) -> None:
    """POST /api/v1/contact/subscribe as the Ruby client: 200 {"id": N}; the contact is
    unconfirmed and the event subscribeFromApi is stored, keyed by the address."""
    email = unique_email("sub")
    r = await replay(compat, "POST", "/api/v1/contact/subscribe",
                     ruby_subscribe(email, "+79160001122"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    (contact_id,) = r.json().values()
    assert r.json() == {"id": contact_id} and isinstance(contact_id, int)
    assert await scalar(compat, "SELECT confirmed FROM contacts WHERE id = :i", i=contact_id) \
        in (False, 0)
    (event,) = await events_of(compat, "subscribeFromApi", email)
    params = {p["name"]: p["value"] for p in event["params"]}
    assert params["contactId"] == contact_id and params["email"] == email


async def test_resubscribing_keeps_known_channels_and_emits_the_update_event(
        compat: Stack) -> None:
    """A second form for the same address updates the name but not the stored phone, joins
    the groups (PHP client form, trailing slash, top-level fields and dedupeOn), and emits
    subscribeUpdateFromApi."""
    email = unique_email("resub")
    first = await replay(compat, "POST", "/api/v1/contact/subscribe",
                         ruby_subscribe(email, "+380501234567"))
    contact_id = first.json()["id"]
    body = {"contact": {"firstName": "Olena", "channels": [
        {"type": "email", "value": email}, {"type": "sms", "value": "+380661234567"}]},
        "groups": ["Newsletter", "VIP"], "fields": [], "dedupeOn": "email",
        "formType": "footer"}
    r = await replay(compat, "POST", "/api/v1/contact/subscribe/", dumps(body),
                     content_type="application/json; charset=UTF-8")
    assert r.status_code == 200, r.text
    assert r.json() == {"id": contact_id}
    assert await scalar(compat, "SELECT phone FROM contacts WHERE id = :i",
                        i=contact_id) == "+380501234567"
    assert await scalar(compat, "SELECT first_name FROM contacts WHERE id = :i",
                        i=contact_id) == "Olena"
    assert await scalar(compat, "SELECT count(*) FROM contact_group_members m JOIN "
                        "contact_groups g ON g.id = m.group_id WHERE m.contact_id = :i "
                        "AND g.name IN ('Newsletter', 'VIP')", i=contact_id) == 2
    (event,) = await events_of(compat, "subscribeUpdateFromApi", email)
    params = {p["name"]: p["value"] for p in event["params"]}
    assert params["formType"] == "footer" and params["groups"] == ["Newsletter", "VIP"]


async def test_subscribe_with_an_unknown_member_is_a_400_naming_it(compat: Stack) -> None:
    """An unknown top-level member is refused by name and nothing is written."""
    email = unique_email("unk")
    body = {"contact": {"channels": [{"type": "email", "value": email}]}, "grups": ["x"]}
    r = await replay(compat, "POST", "/api/v1/contact/subscribe", dumps(body))
    assert r.status_code == 400, r.text
    assert [v["field"] for v in r.json()["violations"]] == ["grups"]
    assert await scalar(compat, "SELECT count(*) FROM contacts WHERE email = :e", e=email) == 0


async def test_subscribe_refuses_what_it_cannot_keep(compat: Stack) -> None:
    """Subscription categories and a contact without channels are 400s that name the field."""
    email = unique_email("cat")
    cases = [
        ({"contact": {"channels": [{"type": "email", "value": email}]},
          "subscriptions": ["news"]}, "subscriptions"),
        ({"contact": {"firstName": "Ivan"}}, "contact.channels"),
        ({"contact": {"channels": [{"type": "email", "value": "not an address"}]}},
         "contact.channels[0].value"),
        ({"contact": {"channels": [{"type": "email", "value": email}]},
          "formType": "a/b"}, "formType"),
    ]
    for body, field in cases:
        r = await replay(compat, "POST", "/api/v1/contact/subscribe", dumps(body))
        assert r.status_code == 400, (body, r.text)
        assert field in [v["field"] for v in r.json()["violations"]], r.json()
    assert await scalar(compat, "SELECT count(*) FROM contacts WHERE email = :e", e=email) == 0


async def test_unsubscribed_list_add_delete_and_read(compat: Stack) -> None:
    """POST emails/unsubscribed/add and /delete ({"emails": [...]}): 200 with an empty body;
    the list reads back paged with a TotalCount header; the older path works too."""
    a, b = unique_email("un"), unique_email("un")
    r = await replay(compat, "POST", "/api/v1/emails/unsubscribed/add",
                     dumps({"emails": [a, b.upper()]}))
    assert r.status_code == 200 and r.content == b"", r.text
    listed = await replay(compat, "GET", "/api/v1/emails/unsubscribed",
                          params={"maxrows": 500}, content_type=None)
    assert listed.status_code == 200, listed.text
    assert a in listed.json() and int(listed.headers["TotalCount"]) >= 2
    r = await replay(compat, "POST", "/api/v1/emails/unsubscribe/delete",
                     dumps({"emails": [b]}))
    assert r.status_code == 200, r.text
    listed = await replay(compat, "GET", "/api/v1/emails/unsubscribed", content_type=None)
    assert a in listed.json() and b.upper() not in [e.upper() for e in listed.json()]


async def test_unsubscribed_add_with_one_bad_address_changes_nothing(compat: Stack) -> None:
    """A bad address is named (emails[1]) and none of the call's addresses is listed."""
    good = unique_email("ok")
    r = await replay(compat, "POST", "/api/v1/emails/unsubscribed/add",
                     dumps({"emails": [good, "nope"]}))
    assert r.status_code == 400
    assert [v["field"] for v in r.json()["violations"]] == ["emails[1]"]
    assert await scalar(compat, "SELECT count(*) FROM unsubscribed_emails WHERE email = :e",
                        e=good) == 0


async def test_delete_by_external_id_answers_the_deleted_text(compat: Stack) -> None:
    """DELETE /api/v1/contact?externalCustomerId=...&erase=false as the WordPress plugin
    sends it: eSputnik's text, and the contact is gone; an unknown id is a 404."""
    email = unique_email("del")
    r = await replay(compat, "POST", "/api/v1/contact", dumps(
        {"channels": [{"type": "email", "value": email}], "externalCustomerId": "WP-77"}))
    contact_id = r.json()["id"]
    r = await replay(compat, "DELETE", "/api/v1/contact?externalCustomerId=WP-77&erase=false")
    assert r.status_code == 200, r.text
    assert r.text == f"Contact with id='{contact_id}' has been deleted"
    assert await scalar(compat, "SELECT count(*) FROM contacts WHERE id = :i", i=contact_id) == 0
    again = await replay(compat, "DELETE", "/api/v1/contact?externalCustomerId=WP-77&erase=true")
    assert again.status_code == 404


async def test_delete_refuses_unknown_parameters_and_a_missing_id(compat: Stack) -> None:
    """A misspelt parameter is a 400 naming it; so is a missing externalCustomerId."""
    r = await replay(compat, "DELETE", "/api/v1/contact?externalCustomerID=1&erase=true")
    assert r.status_code == 400
    assert "externalCustomerID" in [v["field"] for v in r.json()["violations"]]
    r = await replay(compat, "DELETE", "/api/v1/contact?erase=true")
    assert r.status_code == 400


async def test_the_simulator_honours_the_unsubscribed_list(compat: Stack) -> None:
    """POST /api/v1/workflows/simulate reads the account's list as the Email block does: a
    listed address gets no simulated marketing letter (failed, with the reason), its
    obligatory one goes, an unlisted address gets both; another account's list is not read."""
    listed, free = unique_email("simu"), unique_email("simf")
    r = await replay(compat, "POST", "/api/v1/emails/unsubscribed/add",
                     dumps({"emails": [listed]}))
    assert r.status_code == 200, r.text
    r = await replay(compat, "POST", "/api/v1/messages", dumps(
        {"name": "sim", "subject": "Sim", "html": "<p>x</p>", "text": ""}))
    tid = r.json()["id"]
    definition = {"name": "sim", "trigger": {"eventTypeKey": "simPromo"}, "start": "promo",
                  "blocks": [{"id": "promo", "type": "email", "templateId": tid,
                              "to": "${email}", "next": "receipt"},
                             {"id": "receipt", "type": "transactional_email",
                              "templateId": tid, "to": "${email}"}]}
    events = [{"eventTypeKey": "simPromo", "keyValue": address,
               "params": [{"name": "email", "value": address}]} for address in (listed, free)]

    async def simulated(key: str | None = None) -> dict[tuple[str, str], Any]:
        r = await replay(compat, "POST", "/api/v1/workflows/simulate",
                         dumps({"definition": definition, "events": events}), key=key)
        assert r.status_code == 200, r.text
        return {(m["to"], m["blockId"]): m for m in r.json()["messages"]}

    got = await simulated()
    assert got[(listed, "promo")]["status"] == "failed"
    assert "unsubscribed" in got[(listed, "promo")]["reason"]
    assert got[(listed, "receipt")]["status"] == "sent"
    assert {got[(free, b)]["status"] for b in ("promo", "receipt")} == {"sent"}
    other_tid = (await replay(compat, "POST", "/api/v1/messages", dumps(
        {"name": "sim", "subject": "Sim", "html": "<p>x</p>", "text": ""}),
        key=compat.other_key)).json()["id"]
    for block in definition["blocks"]:
        block["templateId"] = other_tid
    assert (await simulated(compat.other_key))[(listed, "promo")]["status"] == "sent"
