"""Orders as the WordPress and PHP plugins send them, stored, visible, and the order
events they emit; orders that arrive as events; every refusal changes nothing."""

from __future__ import annotations

import secrets
from typing import Any

from tests.compat.conftest import dumps, replay
from tests.compat.helpers import events_of, eventually, scalar, unique_email
from tests.support import Stack


def woo_order(order_id: str, email: str, **changes: Any) -> dict[str, Any]:
    """An order as the Yespo WooCommerce plugin builds it: strings for money, blanks for
    what it lacks, digits-only phone, the date with microseconds and an offset."""
    order = {"status": "INITIALIZED", "externalOrderId": order_id,
             "externalCustomerId": secrets.randbelow(10**9) + 1,
             "totalCost": "2682.00", "email": email, "date": "2024-05-01T12:30:00.000000+03:00",
             "currency": "UAH", "firstName": "Olena", "lastName": "Shevchenko",
             "deliveryAddress": "Khreshchatyk 1 Kyiv ", "phone": unique_phone(),
             "shipping": "", "discount": "", "taxes": "0", "source": "checkout",
             "paymentMethod": "cod",
             "items": [{"externalItemId": 341, "name": "Hair styler", "category": "Beauty",
                        "quantity": 2, "cost": "1341.00", "url": "https://shop.example/p/341",
                        "imageUrl": "", "description": ""}]}
    order.update(changes)
    return order


def unique_phone() -> str:
    """A valid Kyivstar number no other test uses (contacts are found by phone too)."""
    return f"38067{secrets.randbelow(10**7):07d}"


async def get_order(s: Stack, order_id: str, key: str | None = None) -> Any:
    return await replay(s, "GET", f"/api/v1/orders/{order_id}", content_type=None, key=key)


async def test_woocommerce_order_is_stored_normalised_and_emits_order_created(
        compat: Stack) -> None:
    """POST /api/v1/orders answers 200 with an empty body (as eSputnik); the order reads
    back normalised, and one orderCreated event carries it, linked to its contact."""
    order_id, email = f"WC-{secrets.token_hex(3)}", unique_email("buyer")
    sent = woo_order(order_id, email)
    r = await replay(compat, "POST", "/api/v1/orders", dumps({"orders": [sent]}))
    assert r.status_code == 200 and r.content == b"", r.text
    got = await get_order(compat, order_id)
    assert got.status_code == 200, got.text
    doc = got.json()
    assert doc["status"] == "INITIALIZED"
    order = doc["order"]
    customer = str(sent["externalCustomerId"])
    assert order["totalCost"] == 2682 and order["externalCustomerId"] == customer
    assert order["phone"] == "+" + sent["phone"] and order["items"][0]["cost"] == 1341
    assert "shipping" not in order and order["taxes"] == 0
    assert order["date"] == "2024-05-01T12:30:00.000+03:00"
    (event,) = await events_of(compat, "orderCreated", customer)
    params = {p["name"]: p["value"] for p in event["params"]}
    assert params["externalOrderId"] == order_id and params["email"] == email

    async def linked() -> Any:
        return (await get_order(compat, order_id)).json()["contactId"]

    contact_id = await eventually(linked)
    assert await scalar(compat, "SELECT external_customer_id FROM contacts WHERE id = :i",
                        i=contact_id) == customer


async def test_order_changes_emit_updated_delivered_cancelled_and_repeats_emit_nothing(
        compat: Stack) -> None:
    """The same order again is silent; a change is orderUpdated; DELIVERED is
    orderDelivered; CANCELLED is orderCancelled: one event each."""
    order_id, email = f"WC-{secrets.token_hex(3)}", unique_email("chg")
    customer, phone = f"cust-{secrets.token_hex(3)}", unique_phone()
    steps = [({}, "orderCreated"), ({}, None), ({"status": "IN_PROGRESS"}, "orderUpdated"),
             ({"status": "IN_PROGRESS", "totalCost": 99}, "orderUpdated"),
             ({"status": "DELIVERED", "totalCost": 99}, "orderDelivered"),
             ({"status": "CANCELLED", "totalCost": 99}, "orderCancelled")]
    expected: dict[str, int] = {}
    for changes, event_type in steps:
        body = {"orders": [woo_order(order_id, email, externalCustomerId=customer, phone=phone,
                                     **changes)]}
        r = await replay(compat, "POST", "/api/v1/orders/", dumps(body))
        assert r.status_code == 200, r.text
        if event_type is not None:
            expected[event_type] = expected.get(event_type, 0) + 1
        for type_key in ("orderCreated", "orderUpdated", "orderDelivered", "orderCancelled"):
            found = await events_of(compat, type_key, customer)
            assert len(found) == expected.get(type_key, 0), (changes, type_key, found)
    assert (await get_order(compat, order_id)).json()["status"] == "CANCELLED"


async def test_a_plugin_batch_of_300_orders_is_stored_in_one_call(compat: Stack) -> None:
    """300 orders (the plugins' batch) in one call: all readable, 300 orderCreated."""
    prefix, customer = f"B{secrets.token_hex(2)}-", f"bulk-{secrets.token_hex(3)}"
    orders = [woo_order(f"{prefix}{i}", unique_email("bulk"), externalCustomerId=customer)
              for i in range(300)]
    r = await replay(compat, "POST", "/api/v1/orders", dumps({"orders": orders}))
    assert r.status_code == 200, r.text
    listed = await replay(compat, "GET", "/api/v1/orders", content_type=None,
                          params={"externalCustomerId": customer, "maxrows": 500})
    assert listed.status_code == 200 and listed.headers["TotalCount"] == "300"
    assert len(listed.json()) == 300
    assert len(await events_of(compat, "orderCreated", customer)) == 300


async def test_one_bad_order_refuses_the_batch_naming_each_field(compat: Stack) -> None:
    """A 400 names orders[i].field for every problem, and not even the good orders are
    written: the plugins mark the batch and send it no more."""
    good, bad = f"G-{secrets.token_hex(3)}", f"X-{secrets.token_hex(3)}"
    email = unique_email("bad")
    body = {"orders": [woo_order(good, email),
                       woo_order(bad, email, status="SHIPPED", totalCost="12,50",
                                 currency="hryvnia", date="yesterday")]}
    r = await replay(compat, "POST", "/api/v1/orders", dumps(body))
    assert r.status_code == 400, r.text
    fields = {v["field"] for v in r.json()["violations"]}
    assert fields == {"orders[1].status", "orders[1].totalCost", "orders[1].currency",
                      "orders[1].date"}
    assert (await get_order(compat, good)).status_code == 404
    assert await scalar(compat, "SELECT count(*) FROM orders WHERE external_order_id IN "
                        "(:a, :b)", a=good, b=bad) == 0


async def test_orders_need_ids_and_a_buyer_and_the_body_only_its_members(
        compat: Stack) -> None:
    """No externalOrderId, no buyer identifier, or an unknown top-level member: 400s."""
    cases = [
        ({"orders": [{"status": "INITIALIZED", "totalCost": 1, "currency": "EUR",
                      "date": "2024-01-01T10:00:00", "email": unique_email()}]},
         "orders[0].externalOrderId"),
        ({"orders": [{"externalOrderId": "N1", "status": "INITIALIZED", "totalCost": 1,
                      "currency": "EUR", "date": "2024-01-01T10:00:00"}]}, "orders[0]"),
        ({"orders": [], "dedupe": True}, "dedupe"),
        ({"order": [woo_order("N2", unique_email())]}, "order"),
    ]
    for body, field in cases:
        r = await replay(compat, "POST", "/api/v1/orders", dumps(body))
        assert r.status_code == 400, (body, r.text)
        assert field in [v["field"] for v in r.json()["violations"]], r.json()


async def test_kirillbdev_statuses_and_other_members_are_kept(compat: Stack) -> None:
    """The PHP client's ABANDONED_SHOPPING_CART status and its extra members (restoreUrl,
    storeId...) are accepted and kept as sent."""
    order_id = f"K-{secrets.token_hex(3)}"
    order = {"externalOrderId": order_id, "externalCustomerId": "k-1",
             "totalCost": 10.5, "status": "ABANDONED_SHOPPING_CART",
             "date": "2024-02-03T04:05:06.000000+00:00", "email": unique_email("k"),
             "currency": "usd", "restoreUrl": "https://shop.example/cart/9", "storeId": "s1",
             "statusDescription": "left at payment", "items": []}
    r = await replay(compat, "POST", "/api/v1/orders", dumps({"orders": [order]}))
    assert r.status_code == 200, r.text
    doc = (await get_order(compat, order_id)).json()
    assert doc["status"] == "ABANDONED_SHOPPING_CART"
    assert doc["order"]["restoreUrl"] == "https://shop.example/cart/9"
    assert doc["order"]["currency"] == "USD" and doc["order"]["totalCost"] == 10.5


async def test_an_order_sent_as_an_event_is_stored_too(compat: Stack) -> None:
    """An orderDelivered event carrying the order as params is an order: it becomes
    visible at GET /api/v1/orders/{id} with the status the event implies."""
    order_id, email = f"EV-{secrets.token_hex(3)}", unique_email("ev")
    event = {"eventTypeKey": "orderDelivered", "keyValue": email, "params": [
        {"name": "externalOrderId", "value": order_id}, {"name": "email", "value": email},
        {"name": "totalCost", "value": 120}, {"name": "currency", "value": "EUR"}]}
    r = await compat.post_event(event)
    assert r.status_code == 200, r.text

    async def stored() -> Any:
        got = await get_order(compat, order_id)
        return got.json() if got.status_code == 200 else None

    doc = await eventually(stored)
    assert doc["status"] == "DELIVERED" and doc["order"]["totalCost"] == 120
    assert doc["contactId"] is not None


async def test_another_account_never_sees_the_order(compat: Stack) -> None:
    """Orders are per account: the other key gets 404 and an empty list."""
    order_id = f"A-{secrets.token_hex(3)}"
    r = await replay(compat, "POST", "/api/v1/orders",
                     dumps({"orders": [woo_order(order_id, unique_email())]}))
    assert r.status_code == 200
    assert (await get_order(compat, order_id, key=compat.other_key)).status_code == 404
    listed = await replay(compat, "GET", "/api/v1/orders", content_type=None,
                          key=compat.other_key)
    assert order_id not in [o["externalOrderId"] for o in listed.json()]


async def test_order_list_refuses_unknown_filters(compat: Stack) -> None:
    """A filter the route does not know is a 400, never a silently wider list."""
    r = await replay(compat, "GET", "/api/v1/orders", content_type=None,
                     params={"customer": "17"})
    assert r.status_code == 400
    assert [v["field"] for v in r.json()["violations"]] == ["customer"]
