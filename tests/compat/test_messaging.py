"""Sending by API call as the clients send it: smartsend (PHP clients' bodies) and
message/email (the Python client's), delivered through a real SMTP server, with the
suppression rules of workflows."""

from __future__ import annotations

import enum
import secrets
from typing import Any

import pydantic
from sqlalchemy import text

from server.accounts import create_account
from server.mail.sink import MailSink
from tests.compat.conftest import dumps, replay
from tests.compat.helpers import eventually, letters_to, unique_email
from tests.support import Stack


class SendStatus(enum.Enum):
    ok = "OK"
    error = "ERROR"


class SendResultModel(pydantic.BaseModel):
    """The Python client's model of one result: an OK/ERROR enum and a requestId."""

    locator: str
    status: SendStatus
    requestId: str
    message: str | None = None


async def fresh_key(s: Stack) -> str:
    _, key = await create_account(s.engine, name=f"msg-{secrets.token_hex(3)}")
    return key


async def a_template(s: Stack, key: str, subject: str) -> int:
    r = await replay(s, "POST", "/api/v1/messages", dumps(
        {"name": subject, "subject": subject,
         "html": "<p>Hello $!data.get('name'), code $!data.get('code')</p>", "text": ""}),
        key=key)
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


def results(r: Any) -> list[SendResultModel]:
    assert r.status_code == 200, r.text
    return [SendResultModel.model_validate(x) for x in r.json()["results"]]


async def letter(sink: MailSink, address: str) -> Any:
    (got,) = await eventually(lambda: _now(letters_to(sink, address)))
    return got.message


async def _now(value: Any) -> Any:
    return value


async def test_smartsend_as_the_php_client_sends_it_renders_json_param(
        compat: Stack, sink: MailSink) -> None:
    """dkulyk's MessageParams body: one OK result with a requestId; the letter is the stored
    template rendered with the recipient's jsonParam; the status route says SENT."""
    key = await fresh_key(compat)
    tid = await a_template(compat, key, "Your code")
    email = unique_email("smart")
    body = ('{"recipients":[{"contactId":null,"locator":"' + email + '","jsonParam":'
            '"{\\"name\\":\\"Ivan\\",\\"code\\":\\"4711\\"}","externalRequestId":null,'
            '"email":true}],"campaignId":null,"allowUnconfirmed":false,"fromName":null,'
            '"email":true}')
    r = await replay(compat, "POST", f"/api/v1/message/{tid}/smartsend", body, key=key)
    (result,) = results(r)
    assert result.status is SendStatus.ok and result.locator == email
    assert r.json()["results"][0]["id"] == 0
    msg = await letter(sink, email)
    assert msg["Subject"] == "Your code"
    assert "Hello Ivan, code 4711" in msg.get_body(("html",)).get_content()

    async def sent() -> Any:
        s = await replay(compat, "GET", "/api/v1/message/status", content_type=None, key=key,
                         params={"ids": result.requestId})
        doc = s.json()["results"][0]
        return doc if doc["status"] == "SENT" else None

    doc = await eventually(sent)
    assert doc["delivered"] is True and doc["messageId"] == msg["Message-ID"]


async def test_smartsend_to_a_contact_id_with_a_sender_name(compat: Stack,
                                                             sink: MailSink) -> None:
    """updevru's body (recipients by contactId, fromName, trailing slash): the letter goes
    to the contact's address under the given display name."""
    key = await fresh_key(compat)
    tid = await a_template(compat, key, "For a contact")
    email = unique_email("cid")
    made = await replay(compat, "POST", "/api/v1/contact", dumps(
        {"channels": [{"type": "email", "value": email}]}), key=key)
    body = {"recipients": [{"contactId": made.json()["id"], "email": True,
                            "jsonParam": '{"name": "Oksana"}', "locator": None}],
            "email": True, "fromName": "Shop UA"}
    (result,) = results(await replay(compat, "POST", f"/api/v1/message/{tid}/smartsend/",
                                     dumps(body), key=key))
    assert result.status is SendStatus.ok and result.locator == email
    msg = await letter(sink, email)
    assert msg["From"].startswith("Shop UA <")


async def test_suppression_rules_are_those_of_workflows(compat: Stack, sink: MailSink) -> None:
    """An unsubscribed address gets no marketing send but an obligatory one; a blacklisted
    contact gets neither; an unconfirmed one only with allowUnconfirmed."""
    key = await fresh_key(compat)
    tid = await a_template(compat, key, "Rules")
    unsub, black, unconf = unique_email("u"), unique_email("b"), unique_email("n")
    await replay(compat, "POST", "/api/v1/emails/unsubscribed/add",
                 dumps({"emails": [unsub]}), key=key)
    made = await replay(compat, "POST", "/api/v1/contact", dumps(
        {"channels": [{"type": "email", "value": black}]}), key=key)
    async with compat.engine.begin() as conn:
        await conn.execute(text("UPDATE contacts SET status = 'blacklisted' WHERE id = :i"),
                           {"i": made.json()["id"]})
    await replay(compat, "POST", "/api/v1/contact/subscribe", dumps(
        {"contact": {"channels": [{"type": "email", "value": unconf}]}}), key=key)

    async def send(address: str, **extra: Any) -> SendResultModel:
        body = {"recipients": [{"locator": address}], **extra}
        (one,) = results(await replay(compat, "POST", f"/api/v1/message/{tid}/smartsend",
                                      dumps(body), key=key))
        return one

    refused = await send(unsub)
    assert refused.status is SendStatus.error and "unsubscribed" in (refused.message or "")
    assert (await send(unsub, obligatory=True)).status is SendStatus.ok
    for extra in ({}, {"obligatory": True}):
        blocked = await send(black, **extra)
        assert blocked.status is SendStatus.error and "blacklisted" in (blocked.message or "")
    assert (await send(unconf)).status is SendStatus.error
    assert (await send(unconf, allowUnconfirmed=True)).status is SendStatus.ok
    await letter(sink, unsub)
    await letter(sink, unconf)
    assert letters_to(sink, black) == []


async def test_message_email_as_the_python_client_sends_it(compat: Stack,
                                                            sink: MailSink) -> None:
    """{"from", "emails", "subject", "htmlText"}: a result per address, each letter as given;
    an unsubscribed address is an ERROR result and gets nothing."""
    key = await fresh_key(compat)
    a, b, unsub = unique_email("e"), unique_email("e"), unique_email("eu")
    await replay(compat, "POST", "/api/v1/emails/unsubscribed/add",
                 dumps({"emails": [unsub]}), key=key)
    body = {"from": "Shop <shop@shop.example.org>", "emails": [a, b, unsub],
            "subject": "Sale", "htmlText": "<p>50% off $today</p>"}
    got = results(await replay(compat, "POST", "/api/v1/message/email", dumps(body), key=key))
    assert [g.status for g in got] == [SendStatus.ok, SendStatus.ok, SendStatus.error]
    assert len({g.requestId for g in got}) == 3
    for address in (a, b):
        msg = await letter(sink, address)
        assert msg["Subject"] == "Sale" and msg["From"] == "Shop <shop@shop.example.org>"
        assert "50% off $today" in msg.get_body(("html",)).get_content()
    assert letters_to(sink, unsub) == []


async def test_malformed_sends_are_400s_and_send_nothing(compat: Stack) -> None:
    """Unknown members, a non-email channel, bad jsonParam, no recipients: 400 naming the
    field; an unknown template: 404; nothing is stored."""
    key = await fresh_key(compat)
    tid = await a_template(compat, key, "Never")
    email = unique_email("never")
    cases = [
        ({"recipients": [{"locator": email}], "sendAt": "now"}, "sendAt"),
        ({"recipients": [{"locator": email, "jsonParm": "{}"}]}, "recipients[0].jsonParm"),
        ({"recipients": [{"locator": email}], "email": False}, "email"),
        ({"recipients": [{"locator": email, "jsonParam": "{not json"}]},
         "recipients[0].jsonParam"),
        ({"recipients": [{"locator": "nobody"}]}, "recipients[0].locator"),
        ({"recipients": []}, "recipients"),
    ]
    for body, field in cases:
        r = await replay(compat, "POST", f"/api/v1/message/{tid}/smartsend", dumps(body),
                         key=key)
        assert r.status_code == 400, (body, r.text)
        assert field in [v["field"] for v in r.json()["violations"]], r.json()
    r = await replay(compat, "POST", "/api/v1/message/987654/smartsend",
                     dumps({"recipients": [{"locator": email}]}), key=key)
    assert r.status_code == 404
    r = await replay(compat, "POST", "/api/v1/message/email",
                     dumps({"emails": [email], "subject": "x"}), key=key)
    assert r.status_code == 400 and "htmlText" in r.text
    async with compat.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT count(*) FROM api_messages WHERE recipient "
                                          "= :e"), {"e": email})).scalar_one()
    assert stored == 0


async def test_older_smartsend_forms_are_sent(compat: Stack, sink: MailSink) -> None:
    """Plugins' forms: a CF7 WordPress plugin's {"recipients": [{"email": address}]}, a
    Laravel app's with jsonParam beside it, and a Guzzle client's single-object recipients
    (Accept with a charset): one OK result each, and each letter delivered rendered."""
    key = await fresh_key(compat)
    tid = await a_template(compat, key, "Older forms")
    cf7, laravel, guzzle = unique_email("cf7"), unique_email("lar"), unique_email("guz")
    bodies = [
        '{"recipients":[{"email":"' + cf7 + '"}]}',
        '{"recipients":[{"email":"' + laravel + '","jsonParam":"{\\"name\\":\\"Lara\\"}"}]}',
        '{"recipients":{"locator":"' + guzzle + '","jsonParam":"{\\"name\\":\\"Guz\\",'
        '\\"code\\":\\"7\\"}"},"fromName":"New User Registration","email":true}',
    ]
    for body, address in zip(bodies, (cf7, laravel, guzzle), strict=True):
        r = await replay(compat, "POST", f"/api/v1/message/{tid}/smartsend", body, key=key,
                         headers={"Accept": "application/json; charset=UTF-8"})
        (result,) = results(r)
        assert result.status is SendStatus.ok and result.locator == address, r.text
    assert "Hello , code" in (await letter(sink, cf7)).get_body(("html",)).get_content()
    assert "Hello Lara" in (await letter(sink, laravel)).get_body(("html",)).get_content()
    msg = await letter(sink, guzzle)
    assert "Hello Guz, code 7" in msg.get_body(("html",)).get_content()
    assert msg["From"].startswith("New User Registration <")
    r = await replay(compat, "POST", f"/api/v1/message/{tid}/smartsend", dumps(
        {"recipients": [{"email": cf7, "locator": guzzle}]}), key=key)
    assert r.status_code == 400
    assert [v["field"] for v in r.json()["violations"]] == ["recipients[0].email"]
