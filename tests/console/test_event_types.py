"""The event-type page over real HTTP on the shared stack: the settings form changes the
type through EventTypeService (only what was changed), its errors stand beside their field,
and the params show as recorded."""

from __future__ import annotations

import html
import json
import re
import secrets
from typing import Any

from eventflow.v1 import event_types_pb2, event_types_pb2_grpc, events_pb2
from tests.console.support import ConsoleClient
from tests.support import Stack


def order(type_key: str, **params: Any) -> dict[str, Any]:
    return {"eventTypeKey": type_key, "keyValue": f"{secrets.token_hex(3)}@shop.example",
            "params": [{"name": k, "value": v} for k, v in params.items()]}


async def signed_in(stack: Stack, key: str) -> ConsoleClient:
    c = ConsoleClient(stack.http_url)
    assert (await c.sign_in(key)).status_code == 303
    return c


def shown_form(page: str) -> dict[str, Any]:
    """The settings form's fields as the browser would send them untouched."""
    form = page[page.index('id="settings-form"'):]
    form = form[:form.index("</form>")]
    hidden = dict(re.findall(r'type="hidden" name="(was_\w+)" value="([^"]*)"', form))
    names = [html.unescape(v) for v in re.findall(
        r'name="rule_name" value="([^"]*)"', form)]
    states = re.findall(r'<select id="rule-state-\d+" name="rule_state">.*?'
                        r'<option value="([^"]*)" selected', form, re.DOTALL)
    recorded = re.findall(r'name="rule_recorded" value="([^"]*)"', form)
    return {"hidden": {k: html.unescape(v) for k, v in hidden.items()}, "names": names,
            "states": states, "recorded": recorded,
            "segmentation": 'name="segmentation" value="1"' in form and re.search(
                r'id="f-segmentation"[^>]*checked', form) is not None,
            "create_contacts": re.search(r'id="f-create-contacts"[^>]*checked', form)
            is not None}


def body_of(f: dict[str, Any], csrf: str) -> dict[str, list[str]]:
    out = [("csrf_token", csrf), *f["hidden"].items()]
    if f["segmentation"]:
        out.append(("segmentation", "1"))
    if f["create_contacts"]:
        out.append(("create_contacts", "1"))
    out += [("rule_recorded", n) for n in f["recorded"]]
    for name, state in zip(f["names"], f["states"], strict=True):
        out += [("rule_name", name), ("rule_state", state)]
    form: dict[str, list[str]] = {}
    for k, v in out:
        form.setdefault(k, []).append(v)
    return form


async def type_of(stack: Stack, key: str, api_key: str | None = None) -> events_pb2.EventType:
    stub = event_types_pb2_grpc.EventTypeServiceStub(stack.channel)
    return await stub.GetEventType(event_types_pb2.GetEventTypeRequest(key=key),
                                   metadata=stack.meta(api_key))


async def test_page_shows_the_real_settings_and_the_recorded_params(stack: Stack) -> None:
    """Segmentation, create contacts and the validate-params rows are the type's own; the
    recorded params list each name with its JSON types and counts."""
    key = f"order_{secrets.token_hex(3)}"
    for value in ("A-1", 7):
        assert (await stack.post_event(order(key, orderId=value, total=10))).status_code == 200
    c = await signed_in(stack, stack.api_key)
    try:
        page = (await c.get(f"/event-types/{key}")).text
        f = shown_form(page)
        assert f["segmentation"] is False and f["create_contacts"] is True
        assert f["hidden"]["was_rules"] == "[]"
        # Every recorded name offered (not checked yet), then the empty rows to add one.
        assert f["names"][:2] == ["orderId", "total"] and f["names"][2:] == ["", ""]
        assert f["states"] == ["", "", "required", "required"]
        recorded = page[page.index('class="recorded"'):]
        row = re.search(r"<code>orderId</code></th><td class=\"num\">(\d+)</td>\s*<td>(.*?)</td>",
                        recorded, re.DOTALL)
        assert row and row.group(1) == "2", recorded[:600]
        assert "string" in row.group(2) and "number" in row.group(2) and "×1" in row.group(2)
        listing = (await c.get("/event-types")).text
        assert key in listing and "Required params" in listing
    finally:
        await c.aclose()


async def test_a_required_param_refuses_events_without_it(stack: Stack) -> None:
    """Set orderId required in the form: the type holds it, the page says so, an event
    without it is a 400 naming it, one with it is stored."""
    key = f"order_{secrets.token_hex(3)}"
    assert (await stack.post_event(order(key, orderId="A-1", total=1))).status_code == 200
    c = await signed_in(stack, stack.api_key)
    try:
        f = shown_form((await c.get(f"/event-types/{key}")).text)
        f["states"][f["names"].index("orderId")] = "required"
        f["segmentation"] = True
        reply = await c.http.post(f"/event-types/{key}", data=body_of(f, c.csrf))
        assert reply.status_code == 303, reply.text[:500]
        assert reply.headers["location"] == f"/event-types/{key}?saved=1"
        t = await type_of(stack, key)
        assert [(r.name, r.required) for r in t.validate_params] == [("orderId", True)]
        assert t.segmentation is True and t.create_contacts is True
        page = (await c.get(reply.headers["location"])).text
        flat = re.sub(r"\s+", " ", page)
        assert (f"Settings saved. From now on an event of <code>{key}</code> without "
                "<code>orderId</code> is refused with 400") in flat, flat[:3000]
        again = shown_form(page)
        assert again["segmentation"] and again["states"][0] == "required"
        assert json.loads(again["hidden"]["was_rules"]) == [["orderId", True]]
        refused = await stack.post_event(order(key, total=2))
        assert refused.status_code == 400 and "orderId" in refused.text
        assert (await stack.post_event(order(key, orderId="A-2"))).status_code == 200
    finally:
        await c.aclose()


async def test_a_save_sends_only_what_was_changed(stack: Stack) -> None:
    """A setting changed elsewhere after the page was shown is kept when the form saves
    another one (patch semantics, as UpdateEventType has them)."""
    key = f"order_{secrets.token_hex(3)}"
    assert (await stack.post_event(order(key, orderId="A-1"))).status_code == 200
    c = await signed_in(stack, stack.api_key)
    try:
        f = shown_form((await c.get(f"/event-types/{key}")).text)
        patched = await stack.http.patch(f"/api/v1/event-types/{key}", headers=stack.auth(),
                                         json={"createContacts": False})
        assert patched.status_code == 200, patched.text
        f["states"][0] = "optional"
        assert (await c.http.post(f"/event-types/{key}", data=body_of(f, c.csrf))
                ).status_code == 303
        t = await type_of(stack, key)
        assert t.create_contacts is False  # not sent back as the page had it
        assert [(r.name, r.required) for r in t.validate_params] == [("orderId", False)]
        # Nothing changed: nothing sent, the page says saved all the same.
        g = shown_form((await c.get(f"/event-types/{key}")).text)
        assert (await c.http.post(f"/event-types/{key}", data=body_of(g, c.csrf))
                ).status_code == 303
        assert (await type_of(stack, key)).validate_params == t.validate_params
    finally:
        await c.aclose()


async def test_errors_stand_beside_their_row_and_change_nothing(stack: Stack) -> None:
    """A duplicated name is a 400 page with the message under that row's field (marked
    invalid), the values as sent, and the type unchanged."""
    key = f"order_{secrets.token_hex(3)}"
    assert (await stack.post_event(order(key, orderId="A-1"))).status_code == 200
    c = await signed_in(stack, stack.api_key)
    try:
        f = shown_form((await c.get(f"/event-types/{key}")).text)
        f["states"][0] = "required"
        f["names"][1], f["names"][2] = "orderId", "x" * 101
        reply = await c.http.post(f"/event-types/{key}", data=body_of(f, c.csrf))
        assert reply.status_code == 400
        page = reply.text
        assert 'id="settings-error"' in page and "Nothing was saved" in page
        dup = re.search(r'id="rule-name-1"[^>]*aria-invalid="true" '
                        r'aria-describedby="rule-err-1">\s*<p class="field-error" '
                        r'id="rule-err-1">([^<]*)</p>', page)
        assert dup and "duplicates" in dup.group(1), page[page.index("rule-name-1"):][:600]
        long = re.search(r'id="rule-err-2">([^<]*)</p>', page)
        assert long and "101 characters" in long.group(1)
        assert 'id="rule-err-0"' not in page
        assert shown_form(page)["names"][1:3] == ["orderId", "x" * 101]
        assert list((await type_of(stack, key)).validate_params) == []
    finally:
        await c.aclose()


async def test_the_form_needs_csrf_and_stays_in_its_account(stack: Stack) -> None:
    """Without the CSRF token: 403, unchanged. Another account posting the form to this
    account's type: 404, nothing changed here, no type made there."""
    key = f"order_{secrets.token_hex(3)}"
    assert (await stack.post_event(order(key, orderId="A-1"))).status_code == 200
    a, b = await signed_in(stack, stack.api_key), await signed_in(stack, stack.other_key)
    try:
        f = shown_form((await a.get(f"/event-types/{key}")).text)
        f["states"][0] = "required"
        forged = body_of(f, "forged")
        assert (await a.http.post(f"/event-types/{key}", data=forged)).status_code == 403
        stolen = await b.http.post(f"/event-types/{key}", data=body_of(f, b.csrf))
        assert stolen.status_code == 404 and "orderId" not in stolen.text
        assert list((await type_of(stack, key)).validate_params) == []
        other = await stack.http.get(f"/api/v1/event-types/{key}",
                                     headers=stack.auth(stack.other_key))
        assert other.status_code == 404
        bare = await a.http.post(f"/event-types/{key}", data={"csrf_token": a.csrf})
        assert bare.status_code == 400 and "was_rules" in bare.text
    finally:
        await a.aclose()
        await b.aclose()
