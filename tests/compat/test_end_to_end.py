"""Orders, subscriptions and erasure end to end: HTTP as the clients send it, the worker,
workflows and a real SMTP server (aiosmtpd). Each test has an account of its own, so its
workflows see only its own events."""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from server.accounts import create_account
from server.mail.sink import MailSink
from tests.compat.conftest import dumps, replay
from tests.compat.helpers import eventually, letters_to, scalar, unique_email
from tests.compat.test_orders import woo_order
from tests.support import Stack


async def fresh_key(s: Stack) -> str:
    _, key = await create_account(s.engine, name=f"e2e-{secrets.token_hex(3)}")
    return key


async def template(s: Stack, key: str, **body: Any) -> int:
    r = await replay(s, "POST", "/api/v1/messages", dumps(body), key=key)
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


async def workflow(s: Stack, key: str, trigger: str, block: dict[str, Any]) -> int:
    definition = {"name": f"on {trigger}", "active": True, "trigger": {"eventTypeKey": trigger},
                  "start": "mail", "blocks": [{"id": "mail", **block}]}
    r = await replay(s, "POST", "/api/v1/workflows", dumps(definition), key=key)
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


async def one_letter(sink: MailSink, address: str, subject: str) -> Any:
    async def found() -> Any:
        return [m for m in letters_to(sink, address) if m.message["Subject"] == subject]

    (letter,) = await eventually(found)
    return letter.message


async def _count_letters(sink: MailSink, address: str, count: int) -> bool:
    return len(letters_to(sink, address)) >= count


async def test_order_route_starts_the_order_workflows_and_mails_the_buyer(
        compat: Stack, sink: MailSink) -> None:
    """POST /api/v1/orders -> orderCreated -> email "Order N received" listing the item;
    the same order DELIVERED -> orderDelivered -> email "Order N delivered"."""
    key = await fresh_key(compat)
    created = await template(compat, key, name="created", subject="Order received",
                             html="<p>$!data.get('externalOrderId'): "
                                  "#foreach($i in $!data.get('items'))$i.get('name')#end</p>",
                             text="")
    delivered = await template(compat, key, name="delivered", subject="Order delivered",
                               html="<p>$!data.get('externalOrderId') arrived</p>", text="")
    await workflow(compat, key, "orderCreated",
                   {"type": "email", "templateId": created, "to": "${email}"})
    await workflow(compat, key, "orderDelivered",
                   {"type": "email", "templateId": delivered, "to": "${email}"})
    order_id, email = f"E2E-{secrets.token_hex(3)}", unique_email("order")
    first = woo_order(order_id, email)
    r = await replay(compat, "POST", "/api/v1/orders", dumps({"orders": [first]}), key=key)
    assert r.status_code == 200, r.text
    body = (await one_letter(sink, email, "Order received")).get_body(("html",)).get_content()
    assert order_id in body and "Hair styler" in body
    r = await replay(compat, "POST", "/api/v1/orders",
                     dumps({"orders": [{**first, "status": "DELIVERED"}]}), key=key)
    assert r.status_code == 200, r.text
    body = (await one_letter(sink, email, "Order delivered")).get_body(("html",)).get_content()
    assert f"{order_id} arrived" in body
    assert [m.message["Subject"] for m in letters_to(sink, email)].count("Order received") == 1


async def test_subscription_form_sends_the_double_opt_in_letter(
        compat: Stack, sink: MailSink) -> None:
    """POST /api/v1/contact/subscribe -> subscribeFromApi -> the confirmation letter (an
    obligatory email: the new contact is unconfirmed)."""
    key = await fresh_key(compat)
    tid = await template(compat, key, name="confirm", subject="Confirm your subscription",
                         html="<p>Form $!data.get('formType'): confirm $!data.get('email')</p>",
                         text="")
    await workflow(compat, key, "subscribeFromApi",
                   {"type": "transactional_email", "templateId": tid, "to": "${email}"})
    email = unique_email("optin")
    body = {"contact": {"firstName": "Ivan", "channels": [{"type": "email", "value": email}]},
            "groups": ["Subscribers"], "formType": "footer"}
    r = await replay(compat, "POST", "/api/v1/contact/subscribe", dumps(body), key=key)
    assert r.status_code == 200, r.text
    html = (await one_letter(sink, email, "Confirm your subscription")
            ).get_body(("html",)).get_content()
    assert f"Form footer: confirm {email}" in html


async def test_erasure_removes_personal_data_and_unlinks_history(
        compat: Stack, sink: MailSink) -> None:
    """A contact with events, a sent letter and an order, erased by externalCustomerId:
    the contact is gone, its events and runs point at nobody, the letter's recipient and
    the order's buyer details are erased; the events and the order's amounts remain."""
    key = await fresh_key(compat)
    tid = await template(compat, key, name="hello", subject="Hello", html="<p>hi</p>", text="")
    await workflow(compat, key, "visited", {"type": "email", "templateId": tid, "to": "${email}"})
    email, customer = unique_email("erase"), f"ER-{secrets.token_hex(3)}"
    r = await replay(compat, "POST", "/api/v1/contact", dumps(
        {"firstName": "Taras", "channels": [{"type": "email", "value": email}],
         "externalCustomerId": customer}), key=key)
    contact_id = r.json()["id"]
    r = await replay(compat, "POST", "/api/v2/event", dumps(
        {"eventTypeKey": "visited", "keyValue": email,
         "params": [{"name": "email", "value": email}]}), key=key)
    assert r.status_code == 200, r.text
    event_id = int(r.headers["X-Event-Id"])
    await one_letter(sink, email, "Hello")
    order_id = f"ER-{secrets.token_hex(3)}"
    r = await replay(compat, "POST", "/api/v1/orders", dumps(
        {"orders": [woo_order(order_id, email, externalCustomerId=customer)]}), key=key)
    assert r.status_code == 200

    async def linked() -> Any:
        return await scalar(compat, "SELECT contact_id FROM events WHERE id = :i", i=event_id)

    assert await eventually(linked) == contact_id

    async def order_linked() -> Any:
        return await scalar(compat, "SELECT contact_id FROM orders WHERE external_order_id = :o",
                            o=order_id)

    assert await eventually(order_linked) == contact_id
    r = await replay(compat, "POST", f"/api/v1/message/{tid}/smartsend", dumps(
        {"recipients": [{"contactId": contact_id, "jsonParam": '{"name": "Taras"}'}]}), key=key)
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "OK", r.text
    await eventually(lambda: _count_letters(sink, email, 2))
    # An import that updates the contact, and one whose error quotes its address.
    r = await replay(compat, "POST", "/api/v1/contacts", dumps(
        {"contacts": [{"externalCustomerId": customer, "lastName": "K"},
                      {"channels": [{"type": "email", "value": email}],
                       "externalCustomerId": f"{customer}-b"}],
         "dedupeOn": "externalCustomerId"}), key=key)
    assert r.status_code == 200, r.text
    session = r.json()["asyncSessionId"]
    before = (await replay(compat, "GET", f"/api/v1/importstatus/{session}", content_type=None,
                           key=key)).text
    assert email in before and f'"id":{contact_id}' in before.replace(" ", ""), before
    r = await replay(compat, "DELETE", f"/api/v1/contact?externalCustomerId={customer}"
                     "&erase=true", key=key)
    assert r.status_code == 200, r.text
    assert r.text == f"Contact with id='{contact_id}' has been deleted"
    assert await scalar(compat, "SELECT count(*) FROM contacts WHERE id = :i", i=contact_id) == 0
    assert await scalar(compat, "SELECT contact_id FROM events WHERE id = :i", i=event_id) is None
    assert await scalar(compat, "SELECT count(*) FROM workflow_runs WHERE contact_id = :i",
                        i=contact_id) == 0
    assert await scalar(compat, "SELECT count(*) FROM workflow_messages WHERE recipient = :e",
                        e=email) == 0
    assert await scalar(compat, "SELECT count(*) FROM workflow_messages m JOIN workflows w ON "
                        "w.id = m.workflow_id WHERE w.account_id = m.account_id AND "
                        "m.recipient = '(erased)' AND m.body_html IS NULL AND "
                        "m.subject = '(erased)' AND m.contact_id IS NULL") >= 1
    assert await scalar(compat, "SELECT count(*) FROM api_messages WHERE lower(recipient) = "
                        ":e OR content LIKE '%Taras%'", e=email) == 0
    status = await replay(compat, "GET", f"/api/v1/importstatus/{session}", content_type=None,
                          key=key)
    assert status.status_code == 200, status.text
    assert email not in status.text and customer not in status.text
    assert contact_id not in [x["id"] for x in status.json()["results"]]
    assert [x["status"] for x in status.json()["results"]] == [
        x["status"] for x in orjson.loads(before)["results"]]
    order = (await replay(compat, "GET", f"/api/v1/orders/{order_id}", content_type=None,
                          key=key)).json()
    assert order["contactId"] is None and order["order"]["totalCost"] == 2682
    assert not {"email", "phone", "firstName", "lastName", "externalCustomerId"} & set(
        order["order"])
    stored = (await replay(compat, "GET", f"/api/v1/events/{event_id}", content_type=None,
                           key=key)).json()
    assert "contactId" not in stored and stored["eventTypeKey"] == "visited"


async def test_email_blocks_honour_the_unsubscribed_list(compat: Stack, sink: MailSink) -> None:
    """An address on the unsubscribed list (no contact needed) gets no marketing letter
    from an Email block, recorded failed with the reason; an obligatory letter still goes;
    after /delete the marketing letter goes again."""
    key = await fresh_key(compat)
    promo = await template(compat, key, name="promo", subject="Promo", html="<p>sale</p>",
                           text="")
    receipt = await template(compat, key, name="receipt", subject="Receipt",
                             html="<p>paid</p>", text="")
    await workflow(compat, key, "promoTime", {"type": "email", "templateId": promo,
                                              "to": "${email}"})
    await workflow(compat, key, "paid", {"type": "transactional_email", "templateId": receipt,
                                         "to": "${email}"})
    email = unique_email("listed")
    r = await replay(compat, "POST", "/api/v1/emails/unsubscribed/add",
                     dumps({"emails": [email.upper()]}), key=key)
    assert r.status_code == 200, r.text
    for event_type in ("promoTime", "paid"):
        r = await replay(compat, "POST", "/api/v2/event", dumps(
            {"eventTypeKey": event_type, "keyValue": email,
             "params": [{"name": "email", "value": email}]}), key=key)
        assert r.status_code == 200, r.text
    await one_letter(sink, email, "Receipt")

    async def refused() -> Any:
        return await scalar(compat, "SELECT reason FROM workflow_messages WHERE recipient = :e "
                            "AND subject = 'Promo' AND status = 'failed'", e=email)

    assert "unsubscribed" in await eventually(refused)
    assert [m for m in letters_to(sink, email) if m.message["Subject"] == "Promo"] == []
    r = await replay(compat, "POST", "/api/v1/emails/unsubscribed/delete",
                     dumps({"emails": [email]}), key=key)
    assert r.status_code == 200, r.text
    r = await replay(compat, "POST", "/api/v2/event", dumps(
        {"eventTypeKey": "promoTime", "keyValue": email,
         "params": [{"name": "email", "value": email}]}), key=key)
    assert r.status_code == 200, r.text
    await one_letter(sink, email, "Promo")


ORDER_EVENTS = ("orderCreated", "orderUpdated", "orderDelivered", "orderCancelled")


async def order_workflows(s: Stack, key: str) -> None:
    """One workflow per order event, each mailing the buyer "<event> <order id>"."""
    for event_type in ORDER_EVENTS:
        tid = await template(s, key, name=event_type,
                             subject=f"{event_type} $!data.get('externalOrderId')",
                             html="<p>$!data.get('status') $!data.get('totalCost')</p>", text="")
        await workflow(s, key, event_type, {"type": "email", "templateId": tid,
                                            "to": "${email}"})


async def test_every_order_event_of_the_route_starts_its_workflow(
        compat: Stack, sink: MailSink) -> None:
    """POST /api/v1/orders as the plugins send it: created, changed (IN_PROGRESS), DELIVERED
    and CANCELLED each start the workflow of orderCreated / orderUpdated / orderDelivered /
    orderCancelled, whose letter reaches the buyer over SMTP; a repeat starts nothing."""
    key = await fresh_key(compat)
    await order_workflows(compat, key)
    order_id, email = f"RT-{secrets.token_hex(3)}", unique_email("route")
    order = woo_order(order_id, email)
    for status, event_type in (("INITIALIZED", "orderCreated"), ("INITIALIZED", None),
                               ("IN_PROGRESS", "orderUpdated"),
                               ("DELIVERED", "orderDelivered"),
                               ("CANCELLED", "orderCancelled")):
        r = await replay(compat, "POST", "/api/v1/orders/",
                         dumps({"orders": [{**order, "status": status}]}), key=key)
        assert r.status_code == 200 and r.content == b"", r.text
        if event_type is not None:
            letter = await one_letter(sink, email, f"{event_type} {order_id}")
            assert status in letter.get_body(("html",)).get_content()
    subjects = sorted(m.message["Subject"] for m in letters_to(sink, email))
    assert subjects == sorted(f"{t} {order_id}" for t in ORDER_EVENTS)


async def test_orders_sent_as_events_start_workflows_and_are_stored(
        compat: Stack, sink: MailSink) -> None:
    """The event form (/api/v2/event orderCreated, then orderCancelled, as a shop's own
    integration sends them): each starts its workflow, mailing the buyer, and the order is
    stored with the status the latest event implies."""
    key = await fresh_key(compat)
    await order_workflows(compat, key)
    order_id, email = f"EF-{secrets.token_hex(3)}", unique_email("evform")
    for event_type, status in (("orderCreated", "INITIALIZED"), ("orderCancelled", "CANCELLED")):
        body = ('{"eventTypeKey":"' + event_type + '","keyValue":"' + email + '","params":['
                '{"name":"externalOrderId","value":"' + order_id + '"},'
                '{"name":"email","value":"' + email + '"},{"name":"status","value":"'
                + status + '"},{"name":"totalCost","value":99.5},'
                '{"name":"currency","value":"UAH"}]}')
        r = await replay(compat, "POST", "/api/v2/event", body, key=key)
        assert r.status_code == 200 and r.content == b"", r.text
        letter = await one_letter(sink, email, f"{event_type} {order_id}")
        assert f"{status} 99.5" in letter.get_body(("html",)).get_content()

        async def stored(want: str = status) -> Any:
            got = await replay(compat, "GET", f"/api/v1/orders/{order_id}", content_type=None,
                               key=key)
            return got.json() if got.status_code == 200 and got.json()["status"] == want \
                else None

        doc = await eventually(stored)
        assert doc["order"]["totalCost"] == 99.5 and doc["contactId"] is not None
    assert len(letters_to(sink, email)) == 2


async def test_segments_count_order_events_of_the_route_and_of_events(compat: Stack) -> None:
    """With segmentation on for orderCreated, a segment "an order over 1500" holds the
    buyers of such orders, whether the order came by POST /api/v1/orders or as an
    orderCreated event, and not the buyer of a small one; read as eSputnik's group."""
    key = await fresh_key(compat)
    r = await replay(compat, "PATCH", "/api/v1/event-types/orderCreated",
                     dumps({"segmentation": True}), key=key)
    assert r.status_code == 200, r.text
    r = await replay(compat, "POST", "/api/v1/segments", dumps(
        {"name": "big buyers", "conditions": {"event": {
            "eventTypeKey": "orderCreated",
            "params": [{"name": "totalCost", "op": "gt", "value": 1500}]}}}), key=key)
    assert r.status_code == 200, r.text
    segment_id = r.json()["id"]
    big, small, by_event = (unique_email("big"), unique_email("small"),
                            unique_email("bigev"))
    for email, cost in ((big, "2682.00"), (small, "99.00")):
        r = await replay(compat, "POST", "/api/v1/orders", dumps({"orders": [woo_order(
            f"SG-{secrets.token_hex(3)}", email, totalCost=cost)]}), key=key)
        assert r.status_code == 200, r.text
    r = await replay(compat, "POST", "/api/v2/event", dumps(
        {"eventTypeKey": "orderCreated", "keyValue": by_event, "params": [
            {"name": "externalOrderId", "value": f"SG-{secrets.token_hex(3)}"},
            {"name": "email", "value": by_event}, {"name": "totalCost", "value": 2000},
            {"name": "currency", "value": "UAH"}]}), key=key)
    assert r.status_code == 200, r.text

    async def members() -> Any:
        r = await replay(compat, "GET", f"/api/v1/group/{segment_id}/contacts",
                         content_type=None, key=key)
        found = {c["channels"][0]["value"] for c in r.json() if c["channels"]}
        return found if found == {big, by_event} else None

    assert await eventually(members) == {big, by_event}

    async def small_processed() -> Any:
        r = await replay(compat, "GET", "/api/v1/contacts", params={"email": small},
                         content_type=None, key=key)
        return r.json()

    await eventually(small_processed)  # its event is processed: membership was decided
    assert await members() == {big, by_event}
