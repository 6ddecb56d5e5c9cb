"""The seed's scenarios end to end: events over HTTP, workers, real SMTP into aiosmtpd."""

from __future__ import annotations

from typing import Any

from server.mail.sink import MailSink
from tests.support import Stack
from tests.workflows.conftest import (
    create_template,
    create_workflow,
    eventually,
    runs_of,
    unique_key,
)

CART_HTML = """<h1>You left these in your cart</h1>
#foreach($!item in $!data.get('array'))
<p>$velocityCount. $!item.get('name') &mdash; $!item.get('price') UAH</p>
#end"""
CART_TEXT = """#foreach($!item in $!data.get('array'))$!item.get('name'): $!item.get('price')
#end"""


def cart_event(key: str, email: str) -> dict[str, Any]:
    return {"eventTypeKey": "abandoned_cart", "keyValue": key, "params": [
        {"name": "email", "value": email},
        {"name": "items", "value": {"array": [
            {"name": "Hair styler", "price": "341", "brand": "Le Petit Olivier"},
            {"name": "Magnolia Nobile Парфумована вода", "price": "2341",
             "brand": "Acqua Di Parma"}]}}]}


def to(sink: MailSink, address: str) -> list[Any]:
    return [m for m in sink.received if address in m.rcpt_tos]


async def test_abandoned_cart_timer_then_email_lists_both_items(wf: Stack, sink: MailSink
                                                                ) -> None:
    """abandoned_cart -> timer -> email: one letter to the email param listing both items."""
    tid = await create_template(wf, name="cart", subject="Your cart", html=CART_HTML,
                                text=CART_TEXT)
    wid = await create_workflow(wf, {
        "name": "abandoned cart", "active": True, "trigger": {"eventTypeKey": "abandoned_cart"},
        "start": "wait", "blocks": [
            {"id": "wait", "type": "timer", "duration": "PT1S", "next": "mail"},
            {"id": "mail", "type": "email", "templateId": tid, "to": "${email}",
             "jsonParam": "items", "next": "end"},
            {"id": "end", "type": "end"}]})
    email = f"{unique_key('cart')}@ukr.net"
    r = await wf.post_event(cart_event("site@com.net", email))
    assert r.status_code == 200, r.text
    got = await eventually(lambda: _async(to(sink, email)))
    assert len(got) == 1
    msg = got[0].message
    assert msg["Subject"] == "Your cart" and msg["Message-ID"].startswith("<wf.")
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    for part in (html, text):
        assert "Hair styler" in part and "341" in part
        assert "Magnolia Nobile Парфумована вода" in part and "2341" in part
    (run,) = await runs_of(wf, wid)
    assert (await eventually(lambda: _run_status(wf, run["id"], "completed")))
    r = await wf.http.get(f"/api/v1/workflow-runs/{run['id']}/messages", headers=wf.auth())
    (m,) = r.json()["messages"]
    assert m["status"] == "sent" and m["recipient"] == email
    assert m["messageId"] == msg["Message-ID"]


async def test_password_recovery_sends_transactional_letter(wf: Stack, sink: MailSink) -> None:
    """password_recovery -> transactional email with $!data.get('password') to EmailAddress."""
    tid = await create_template(wf, name="pwd", subject="Password recovery",
                                html="<p>Your password: $!data.get('password')</p>", text="")
    await create_workflow(wf, {
        "name": "password", "active": True, "trigger": {"eventTypeKey": "password_recovery"},
        "start": "mail", "blocks": [
            {"id": "mail", "type": "transactional_email", "templateId": tid,
             "to": "${EmailAddress}"}]})
    email = f"{unique_key('pwd')}@ukr.net"
    await wf.post_event({"eventTypeKey": "password_recovery", "keyValue": "site@com.net",
                         "params": [{"name": "EmailAddress", "value": email},
                                    {"name": "password", "value": "12345678"}]})
    (got,) = await eventually(lambda: _async(to(sink, email)))
    assert "12345678" in got.message.get_body(("html",)).get_content()
    assert "12345678" in got.message.get_body(("plain",)).get_content()


async def _async(value: Any) -> Any:
    return value


async def _run_status(s: Stack, run_id: int, status: str) -> bool:
    r = await s.http.get(f"/api/v1/workflow-runs/{run_id}", headers=s.auth())
    return bool(r.json()["status"] == status)
