"""What an outside tester's walkthrough of the console found (docs/console.md, "Found by an
outside walkthrough"), each over real HTTP against the shared stack."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from html import unescape

from tests.console.support import ConsoleClient, flat, signed_in
from tests.support import Stack

DEEP = "[" * 5000 + "]" * 5000
LOOP = ("#foreach($!item in $!data.get('array'))\n"
        "<p>$!item.get('name'): $!item.get('price')</p>\n#end")


async def a_workflow(stack: Stack, type_key: str) -> int:
    template = await stack.http.post("/api/v1/messages", headers=stack.auth(), json={
        "name": f"t {type_key}", "subject": "s", "html": "<p>hi</p>"})
    assert template.status_code == 200, template.text
    reply = await stack.http.post("/api/v1/workflows", headers=stack.auth(), json={
        "name": type_key, "active": True, "trigger": {"eventTypeKey": type_key},
        "start": "mail", "blocks": [{"id": "mail", "type": "email",
                                     "templateId": template.json()["id"]}]})
    assert reply.status_code in (200, 201), reply.text
    return int(reply.json()["id"])


async def test_deep_json_in_forms_is_a_400_in_the_form(stack: Stack) -> None:
    """Finding 2: 5,000 nested arrays pasted into the preview, a workflow's definition (new
    and saved), the simulator and a segment's definition get the JSON API's 400 ("nested
    deeper than 32 levels"), shown in the form with the text kept, never a 500."""
    api = await stack.http.post("/api/v1/workflows", content=DEEP,
                                 headers={**stack.auth(), "Content-Type": "application/json"})
    assert api.status_code == 400 and "nested deeper than 32" in api.text, api.text
    workflow_id = await a_workflow(stack, f"deep_{secrets.token_hex(3)}")
    c = await signed_in(stack)
    try:
        pv = await c.preview({"html": LOOP, "source": "json", "json": DEEP})
        assert pv.status_code == 200, pv.text
        assert pv.json()["data"]["message"].startswith("Wrong Format")
        assert "nested deeper than 32 levels" in pv.json()["data"]["message"]
        whole = await c.http.post("/messages/preview", content=DEEP, headers={
            "X-CSRF-Token": c.csrf, "Content-Type": "application/json"})
        assert whole.status_code == 400 and "nested deeper" in whole.json()["error"]
        forms = [("/workflows", {"definition": DEEP, "name": "x", "type": "t"}),
                 (f"/workflows/{workflow_id}/definition", {"definition": DEEP}),
                 (f"/workflows/{workflow_id}/simulate", {"events": DEEP}),
                 ("/segments", {"definition": DEEP})]
        for path, data in forms:
            reply = await c.post_form(path, data)
            assert reply.status_code == 400, (path, reply.status_code, reply.text[:300])
            assert "nested deeper than 32 levels" in flat(reply.text), path
            assert DEEP in reply.text, f"{path} lost the text"
        # Shallower text that does not parse still says where.
        bad = await c.post_form("/segments", {"definition": '{"name": }'})
        assert "is not valid JSON" in flat(bad.text) and "line 1, column 10" in flat(bad.text)
    finally:
        await c.aclose()


async def test_an_over_long_message_keeps_the_editor_and_its_text(stack: Stack) -> None:
    """Finding 3: a 1 MB template saved from the form comes back as the editor, its text
    kept and the part's limit said with what to do; a form over the console's limit is a
    413 console page saying the limit, never the router's JSON 404; the preview names the
    part that is too long."""
    c = await signed_in(stack)
    try:
        big = "x" * (1024 * 1024)
        reply = await c.post_form("/messages", {"name": "big", "subject": "s", "html": big,
                                                "text": ""})
        assert reply.status_code == 400, reply.text[:300]
        assert "text/html" in reply.headers["content-type"]
        assert "a message part may be up to 262,144" in flat(reply.text)
        assert big in reply.text and 'id="message-form"' in reply.text
        huge = await c.post_form("/messages", {"name": "huge", "html": "y" * (5 * 1024 * 1024)})
        assert huge.status_code == 413 and "text/html" in huge.headers["content-type"]
        text = flat(huge.text)
        assert "the console takes forms of up to 4 MiB" in text and "Back button" in text
        pv = (await c.preview({"html": big, "source": "json", "json": "{}"})).json()
        assert "a message part may be up to 262,144" in pv["html"]["error"]["message"]
    finally:
        await c.aclose()


async def wait_runs(stack: Stack, workflow_id: int, count: int) -> list[dict[str, object]]:
    for _ in range(600):
        reply = await stack.http.get(f"/api/v1/workflows/{workflow_id}/runs",
                                     headers=stack.auth())
        runs = [r for r in reply.json()["runs"] if r["status"] not in ("running", "waiting")]
        if len(runs) >= count:
            return runs
        await asyncio.sleep(0.1)
    raise AssertionError(f"no finished run of workflow {workflow_id}: {reply.text}")


async def test_runs_and_events_say_what_went_wrong(stack: Stack) -> None:
    """Finding 6: a run whose letter was skipped (the event's email is not an address)
    says so in the run list and on its page, not only in the step log. Finding 10: the
    event's page gives the identity note's reason, not "not linked (yet)"."""
    type_key = f"bad_mail_{secrets.token_hex(3)}"
    workflow_id = await a_workflow(stack, type_key)
    sent = await stack.post_event({"eventTypeKey": type_key, "keyValue": "not-an-email",
                                   "params": [{"name": "email", "value": "not-an-email"}]})
    event_id = sent.headers["x-event-id"]
    runs = await wait_runs(stack, workflow_id, 1)
    c = await signed_in(stack)
    try:
        listing = flat((await c.get(f"/workflows/{workflow_id}")).text)
        assert "1 step skipped: mail (no email address to send to" in listing, listing
        run = flat((await c.get(f"/runs/{runs[0]['id']}")).text)
        assert "with 1 step skipped" in run and "Not done 1 step skipped: mail" in run, run
        api = (await stack.http.get(f"/api/v1/events/{event_id}", headers=stack.auth())).json()
        notes = api.get("identityNotes") or []
        page = flat((await c.get(f"/events/{event_id}")).text)
        assert notes, api
        assert notes[0]["message"] in page and "(yet)" not in page, page
    finally:
        await c.aclose()


async def test_simulator_result_does_not_resubmit(stack: Stack) -> None:
    """Finding 9: the simulator's result (the answer to a POST) never reloads itself, and
    its letters say they would be sent: nothing is."""
    type_key = f"sim_{secrets.token_hex(3)}"
    workflow_id = await a_workflow(stack, type_key)
    c = await signed_in(stack)
    try:
        before = await c.get(f"/workflows/{workflow_id}")
        assert 'data-refresh="3"' in before.text  # active, no run yet: the page watches
        events = json.dumps([{"eventTypeKey": type_key, "keyValue": "a@x.example", "at": "PT0S",
                              "params": [{"name": "email", "value": "a@x.example"}]}])
        reply = await c.post_form(f"/workflows/{workflow_id}/simulate", {"events": events})
        assert reply.status_code == 200, reply.text[:300]
        assert "data-refresh" not in reply.text
        text = flat(reply.text)
        assert "would be sent (simulated: nothing was sent)" in text, text
        assert '"status": "sent"' not in text
    finally:
        await c.aclose()


async def test_filters_hints_and_wording(stack: Stack) -> None:
    """Finding 12: an unknown event type in the filter says so instead of listing every
    event. Finding 13: pasted JSON that is not an object gets a note. Finding 15: no
    backticks at sign-in, "signed out" after signing out, no Python None in an address, a
    Velocity error at the end of a line says what it got."""
    await stack.post_event({"eventTypeKey": "known_type", "keyValue": "k@x.example",
                            "params": [{"name": "email", "value": "k@x.example"}]})
    c = await signed_in(stack)
    try:
        for query in ("eventTypeKey=no_such_type", "type=no_such_type"):
            page = flat((await c.get(f"/events?{query}")).text)
            assert "No such event type: no_such_type" in page, page
            assert "k@x.example" not in page
        known = flat((await c.get("/events?eventTypeKey=known_type")).text)
        assert "k@x.example" in known
        for pasted, kind in (("[1, 2, 3]", "a list"), ('"text"', "a string")):
            pv = (await c.preview({"html": "$!data.get('a')", "source": "json",
                                   "json": pasted})).json()
            assert f"The pasted JSON is {kind}, not an object" in pv["note"]
        assert "note" not in (await c.preview({"html": "x", "source": "json",
                                               "json": "{}"})).json()
        bad = (await c.preview({"html": "ok\n#if($x", "source": "json", "json": "{}"})).json()
        assert bad["html"]["error"]["message"].endswith("got: the end of the line")
        contact = await stack.http.post("/api/v1/contact", headers=stack.auth(), json={
            "firstName": "Olena", "address": {"town": "Kyiv"},
            "channels": [{"type": "email", "value": f"o{secrets.token_hex(3)}@x.example"}]})
        assert contact.status_code == 200, contact.text
        page = flat((await c.get(f"/contacts/{contact.json()['id']}")).text)
        assert "Address Kyiv Created" in page and "Last name — " in page, page
        out = await c.post_form("/logout", {})
        signed_out = flat((await c.get(out.headers["location"])).text)
        assert "You are signed out" in signed_out
    finally:
        await c.aclose()
    wrong = ConsoleClient(stack.http_url)
    try:
        reply = await wrong.sign_in("not-a-key")
        assert "make run prints the key" in reply.text and "`" not in flat(reply.text)
    finally:
        await wrong.aclose()


async def test_workflow_pages_follow_the_trigger_types_params(stack: Stack) -> None:
    """Finding 4: the workflow page's curl is the trigger type's last event, not the cart.
    Finding 8: a trigger key the event API refuses is refused by the form with that rule;
    a JSON param the type's events do not carry is warned about, and not prefilled.
    Finding 14: a saved message's page previews with the JSON param its workflow reads."""
    type_key = f"password_{secrets.token_hex(3)}"
    await stack.post_event({"eventTypeKey": type_key, "keyValue": "p@x.example", "params": [
        {"name": "EmailAddress", "value": "p@x.example"}, {"name": "password", "value": "s3cr'et"}]})
    workflow_id = await a_workflow(stack, type_key)
    c = await signed_in(stack)
    try:
        page = (await c.get(f"/workflows/{workflow_id}")).text
        curl = unescape(page[page.index('<pre class="cmd"'):].split("</pre>", 1)[0])
        assert '"name": "EmailAddress"' in curl and "s3cr'\\''et" in curl, curl
        assert "Hair styler" not in curl and '"items"' not in curl
        assert "The body of the last" in flat(page)
        new = (await c.get(f"/workflows/new?type={type_key}")).text
        assert re.search(r'name="json_param"[^>]*value=""', new), new[new.index("json_param"):][:300]
        template = re.search(r'<option value="(\d+)"', new)
        assert template
        form = {"name": "slash", "type": "has space/slash", "wait": "", "to": "${email}",
                "template": template.group(1), "json_param": "", "active": "1",
                "definition": ""}
        refused = await c.post_form("/workflows", form)
        assert refused.status_code == 400
        assert "contains the forbidden character(s) /" in flat(refused.text)
        assert 'id="w-type-err"' in refused.text
        created = await c.post_form("/workflows", {**form, "name": "items", "type": type_key,
                                                   "json_param": "items"})
        assert created.status_code == 303, flat(created.text)[:600]
        warned = flat((await c.get(created.headers["location"])).text)
        assert "reads JSON param 'items', but the last" in warned
        assert "(it has: EmailAddress, password)" in warned
        message = await c.get(f"/messages/{template.group(1)}")
        assert re.search(r'id="pv-json-param" value="items"', message.text)
    finally:
        await c.aclose()


async def test_duplicate_rule_rows_are_refused_beside_the_row(stack: Stack) -> None:
    """Finding 11: a new "Validate parameters" row naming a recorded param whose own row is
    "not checked" is the duplicate error under the new row, not silently merged."""
    type_key = f"dup_{secrets.token_hex(3)}"
    await stack.post_event({"eventTypeKey": type_key, "keyValue": "d@x.example",
                            "params": [{"name": "email", "value": "d@x.example"}]})
    c = await signed_in(stack)
    try:
        page = (await c.get(f"/event-types/{type_key}")).text
        was = unescape(re.search(r'name="was_rules" value="([^"]*)"', page).group(1))
        form = {"csrf_token": [c.csrf], "was_rules": [was], "was_segmentation": ["0"],
                "was_create_contacts": ["0"], "rule_recorded": ["email"],
                "rule_name": ["email", "email"], "rule_state": ["", "required"]}
        reply = await c.http.post(f"/event-types/{type_key}", data=form)
        assert reply.status_code == 400, flat(reply.text)[:500]
        err = re.search(r'id="rule-err-1">([^<]*)</p>', reply.text)
        assert err and "duplicates the name 'email'" in unescape(err.group(1)), reply.text
        rules = (await stack.http.get(f"/api/v1/event-types/{type_key}",
                                      headers=stack.auth())).json()
        assert not rules.get("validateParams"), rules
    finally:
        await c.aclose()


async def test_task_block_examples_work_and_deactivation_is_explained(stack: Stack) -> None:
    """Finding 5: the new-workflow form offers the seed's task blocks (transactional email,
    create contact) as definitions that create a workflow as they stand. Finding 7: with a
    run waiting in a timer, the workflow page says what switching it off does to it."""
    type_key = f"tasks_{secrets.token_hex(3)}"
    await stack.post_event({"eventTypeKey": type_key, "keyValue": "t@x.example",
                            "params": [{"name": "email", "value": "t@x.example"}]})
    await a_workflow(stack, type_key)  # a message to send, for the example
    c = await signed_in(stack)
    try:
        page = (await c.get(f"/workflows/new?type={type_key}")).text
        found = [unescape(t) for t in re.findall(
            r'<pre class="cmd example-definition" tabindex="0"><code>(.*?)</code>', page, re.DOTALL)]
        kinds = {json.loads(t)["blocks"][0]["type"] for t in found}
        assert kinds == {"transactional_email", "create_contact"}, found
        for text in found:
            reply = await c.post_form("/workflows", {"definition": text})
            assert reply.status_code == 303, flat(reply.text)[:500]
        timer = await stack.http.post("/api/v1/workflows", headers=stack.auth(), json={
            "name": "slow", "active": True, "trigger": {"eventTypeKey": type_key},
            "start": "wait", "blocks": [{"id": "wait", "type": "timer", "duration": "PT1H",
                                           "next": "end"}, {"id": "end", "type": "end"}]})
        slow = timer.json()["id"]
        await stack.post_event({"eventTypeKey": type_key, "keyValue": "t@x.example",
                                "params": [{"name": "email", "value": "t@x.example"}]})
        for _ in range(600):
            runs = (await stack.http.get(f"/api/v1/workflows/{slow}/runs",
                                         headers=stack.auth())).json()["runs"]
            if runs and runs[0]["status"] == "waiting":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"no waiting run: {runs}")
        text = flat((await c.get(f"/workflows/{slow}")).text)
        assert "Switching this workflow off only stops new runs" in text
        await c.post_form(f"/workflows/{slow}/active", {"active": "0"})
        off = flat((await c.get(f"/workflows/{slow}")).text)
        assert "Inactive: no event starts a run. The runs already started" in off
    finally:
        await c.aclose()
