"""What an outside tester's walkthrough of the console found (docs/console.md, "Found by an
outside walkthrough"), each over real HTTP against the shared stack."""

from __future__ import annotations

import re
import secrets
from html import unescape

from tests.console.support import ConsoleClient
from tests.support import Stack

DEEP = "[" * 5000 + "]" * 5000
LOOP = ("#foreach($!item in $!data.get('array'))\n"
        "<p>$!item.get('name'): $!item.get('price')</p>\n#end")


async def signed_in(stack: Stack) -> ConsoleClient:
    c = ConsoleClient(stack.http_url)
    assert (await c.sign_in(stack.api_key)).status_code == 303
    return c


def flat(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


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
