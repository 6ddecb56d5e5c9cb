"""The console over real HTTP on the shared stack: sign-in, cookies, CSRF, accounts kept apart,
the message preview, and the JSON API left as it was."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from eventflow.v1 import templates_pb2, templates_pb2_grpc
from tests.console.support import ConsoleClient, form_token
from tests.support import Stack

LOOP = ("#foreach($!item in $!data.get('array'))\n"
        "<p>$!item.get('name'): $!item.get('price')</p>\n#end")


def cart(key_value: str, type_key: str = "abandoned_cart") -> dict[str, object]:
    return {"eventTypeKey": type_key, "keyValue": key_value, "params": [
        {"name": "email", "value": "site@ukr.net"},
        {"name": "items", "value": {"array": [
            {"name": "Hair styler", "price": "341"},
            {"name": "Magnolia Nobile Парфумована вода", "price": "2341"}]}}]}


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[ConsoleClient]:
    c = ConsoleClient(stack.http_url)
    yield c
    await c.aclose()


async def signed_in(stack: Stack, key: str) -> ConsoleClient:
    c = ConsoleClient(stack.http_url)
    assert (await c.sign_in(key)).status_code == 303
    return c


async def test_pages_need_sign_in(client: ConsoleClient) -> None:
    """Without a session every page redirects to the sign-in form, keeping where it was."""
    for path in ("/", "/events?type=x", "/messages/new", "/workflows", "/contacts", "/sent"):
        reply = await client.get(path)
        assert reply.status_code == 303, path
        assert reply.headers["location"].startswith("/login?next=%2F"), reply.headers
    assert "API key" in (await client.get("/login")).text


async def test_sign_in_sets_a_safe_session_cookie(stack: Stack, client: ConsoleClient) -> None:
    """A right key signs in: HttpOnly, SameSite=Lax cookie, the account's name on the page."""
    reply = await client.sign_in(stack.api_key)
    assert reply.status_code == 303 and reply.headers["location"] == "/"
    cookie = next(v for k, v in reply.headers.multi_items()
                  if k == "set-cookie" and v.startswith("ef_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert stack.api_key not in cookie
    home = await client.get("/")
    assert home.status_code == 200 and "Sign out" in home.text and "default" in home.text


async def test_wrong_key_is_refused(client: ConsoleClient) -> None:
    """An unknown key answers 401 with a sentence saying where the key is; no session."""
    reply = await client.sign_in("not-a-key")
    assert reply.status_code == 401
    assert "not known" in reply.text and "var/api_key" in reply.text
    assert "ef_session" not in client.http.cookies
    assert (await client.get("/")).status_code == 303


async def test_sign_in_form_needs_its_token(stack: Stack, client: ConsoleClient) -> None:
    """A sign-in POST that did not come from the form (no login token) is refused."""
    reply = await client.http.post("/login", data={"api_key": stack.api_key})
    assert reply.status_code == 403 and "expired" in reply.text
    assert "ef_session" not in client.http.cookies


async def test_next_stays_on_this_site(stack: Stack, client: ConsoleClient) -> None:
    """After sign-in only local paths are followed (no open redirect)."""
    reply = await client.sign_in(stack.api_key, next_path="//evil.example/x")
    assert reply.headers["location"] == "/"
    other = ConsoleClient(stack.http_url)
    try:
        reply = await other.sign_in(stack.api_key, next_path="/events?type=a")
        assert reply.headers["location"] == "/events?type=a"
    finally:
        await other.aclose()


async def test_forms_without_csrf_change_nothing(stack: Stack) -> None:
    """A message POST without the session's CSRF token is 403 and stores nothing."""
    c = await signed_in(stack, stack.api_key)
    stub = templates_pb2_grpc.TemplateServiceStub(stack.channel)
    before = len((await stub.ListTemplates(templates_pb2.ListTemplatesRequest(),
                                           metadata=stack.meta())).templates)
    try:
        reply = await c.post_form("/messages", {"name": "x", "html": "hi"}, csrf=False)
        assert reply.status_code == 403 and "CSRF" in reply.text
        reply = await c.http.post("/messages", data={"name": "x", "html": "hi",
                                                     "csrf_token": "forged"})
        assert reply.status_code == 403
        assert (await c.preview({"html": "x"}, csrf=False)).status_code == 403
        after = len((await stub.ListTemplates(templates_pb2.ListTemplatesRequest(),
                                              metadata=stack.meta())).templates)
        assert after == before
        saved = await c.post_form("/messages", {"name": "csrf ok", "subject": "s",
                                                "html": "<p>hi</p>", "text": "hi"})
        assert saved.status_code == 303 and saved.headers["location"].startswith("/messages/")
    finally:
        await c.aclose()


async def test_sign_out_ends_the_session(stack: Stack) -> None:
    """Signing out ends the session on the server: the old cookie no longer works."""
    c = await signed_in(stack, stack.api_key)
    try:
        cookie = c.http.cookies["ef_session"]
        reply = await c.post_form("/logout", {})
        assert reply.status_code == 303 and reply.headers["location"] == "/login?signed_out=1"
        c.http.cookies.clear()
        c.http.cookies.set("ef_session", cookie)
        assert (await c.get("/")).status_code == 303
        c.http.cookies.set("ef_session", cookie[:-3] + "abc")
        assert (await c.get("/")).status_code == 303
    finally:
        await c.aclose()


async def test_one_account_never_sees_another(stack: Stack) -> None:
    """Events, types and an event's page of account A are invisible to account B."""
    type_key = f"secret_{secrets.token_hex(3)}"
    key_value = f"{secrets.token_hex(4)}@a.example"
    reply = await stack.post_event(cart(key_value, type_key))
    assert reply.status_code == 200
    event_id = reply.headers["x-event-id"]
    a, b = await signed_in(stack, stack.api_key), await signed_in(stack, stack.other_key)
    try:
        assert key_value in (await a.get(f"/events?type={type_key}")).text
        assert type_key in (await a.get("/event-types")).text
        assert "Hair styler" in (await a.get(f"/events/{event_id}")).text
        assert "other" in (await b.get("/")).text
        for path in ("/", "/events", f"/events?type={type_key}", "/event-types", "/contacts"):
            page = await b.get(path)
            assert page.status_code == 200, path
            assert key_value not in page.text, path
            if "?" in path:  # B typed A's type key: B's page says it has no such type
                assert "No such event type" in page.text, path
            else:
                assert type_key not in page.text, path
        assert (await b.get(f"/events/{event_id}")).status_code == 404
        assert (await b.get(f"/event-types/{type_key}")).status_code == 404
        preview = await b.preview({"html": LOOP, "source": "event", "eventId": event_id})
        assert preview.status_code == 404
    finally:
        await a.aclose()
        await b.aclose()


async def test_preview_renders_the_seed_loop_and_marks_errors(stack: Stack) -> None:
    """The seed's loop shows both items; a syntax error comes back with its line and column;
    pasted JSON that does not parse is "Wrong Format"."""
    reply = await stack.post_event(cart("preview@x.example"))
    event_id = reply.headers["x-event-id"]
    c = await signed_in(stack, stack.api_key)
    try:
        ok = (await c.preview({"html": LOOP, "subject": "Cart", "text": "", "source": "event",
                               "eventId": event_id, "jsonParam": "items"})).json()
        assert "Hair styler: 341" in ok["html"]["rendered"]
        assert "Magnolia Nobile Парфумована вода: 2341" in ok["html"]["rendered"]
        assert ok["subject"]["rendered"] == "Cart"
        broken = LOOP.replace("$!item.get('name')", "#if($!item.get('name')")
        bad = (await c.preview({"html": broken, "source": "event", "eventId": event_id,
                                "jsonParam": "items"})).json()
        assert bad["html"]["error"]["line"] == 2 and bad["html"]["error"]["column"] > 0
        pasted = (await c.preview({"html": LOOP, "source": "json",
                                   "json": '{"array": [{"name": "A", "price": "1"}]}'})).json()
        assert "A: 1" in pasted["html"]["rendered"]
        wrong = (await c.preview({"html": LOOP, "source": "json",
                                  "json": '{"array": [\n  {"name": }]}'})).json()
        assert wrong["data"]["message"].startswith("Wrong Format")
        assert wrong["data"]["line"] == 2
    finally:
        await c.aclose()


async def test_saving_a_broken_template_shows_where(stack: Stack) -> None:
    """Saving a template that does not compile re-shows the editor with line and column."""
    c = await signed_in(stack, stack.api_key)
    try:
        reply = await c.post_form("/messages", {"name": "broken", "subject": "s",
                                                "html": "ok\n#if($x", "text": ""})
        assert reply.status_code == 422
        assert 'data-field="html"' in reply.text and 'data-line="2"' in reply.text
        assert form_token(reply.text, "csrf_token") == c.csrf
    finally:
        await c.aclose()


async def test_json_api_is_untouched(stack: Stack) -> None:
    """Unknown API paths still answer JSON 404; the console takes only its own paths."""
    reply = await stack.http.get("/api/v9/nothing")
    assert reply.status_code == 404 and reply.json()["error"].startswith("no route")
    assert (await stack.http.get("/healthz")).json() == {"status": "ok"}
    static = await stack.http.get("/console/static/console.css")
    assert static.status_code == 200 and "text/css" in static.headers["content-type"]


async def test_bad_ids_are_400_pages_naming_the_field(stack: Stack) -> None:
    """A malformed id or filter answers a 400 page saying which value and why."""
    c = await signed_in(stack, stack.api_key)
    try:
        for path, field in (("/events/abc", "id"), ("/workflows/1x", "id"),
                            ("/sent?run=x", "run"), ("/events?since=yesterday", "since")):
            page = await c.get(path)
            assert page.status_code == 400, path
            assert f"<code>{field}</code>" in page.text, (path, page.text[-600:])
            assert "correct the fields named above" in page.text, path
        missing = await c.get("/events/999999999")
        assert missing.status_code == 404
        # The error page says what to do next and links back to its section's list.
        assert "It is not in this account" in missing.text
        assert 'Find it in <a href="/events">Event history</a>' in missing.text
        bad = await c.preview({"html": "x", "source": "event", "eventId": "¹"})
        assert bad.status_code == 400 and bad.json()["violations"][0]["field"] == "eventId"
    finally:
        await c.aclose()


async def test_static_assets_are_the_package_files_only(stack: Stack) -> None:
    """Assets are served by name from the package; anything else is 404, no path tricks."""
    js = await stack.http.get("/console/static/editor.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    for path in ("/console/static/nope.js", "/console/static/..%2F__init__.py",
                 "/console/static/../__init__.py"):
        assert (await stack.http.get(path)).status_code == 404, path


async def test_saving_a_message_keeps_its_id(stack: Stack) -> None:
    """The editor of a saved message saves it in place (UpdateTemplate); "Save as a new
    message" posts to /messages and makes another; a broken save changes nothing; another
    account can not save over it."""
    c = await signed_in(stack, stack.api_key)
    other = await signed_in(stack, stack.other_key)
    stub = templates_pb2_grpc.TemplateServiceStub(stack.channel)
    try:
        made = await c.post_form("/messages", {"name": "in place", "subject": "s",
                                               "html": "<p>one</p>", "text": "one"})
        path = made.headers["location"].split("?")[0]
        template_id = int(path.rsplit("/", 1)[1])
        page = await c.get(made.headers["location"])
        assert f'action="{path}"' in page.text and "Saved as message" in page.text
        before = len((await stub.ListTemplates(templates_pb2.ListTemplatesRequest(),
                                               metadata=stack.meta())).templates)
        saved = await c.post_form(path, {"name": "in place", "subject": "s2",
                                         "html": LOOP, "text": "two"})
        assert saved.status_code == 303 and saved.headers["location"].startswith(path + "?")
        assert "saved=updated" in saved.headers["location"]
        got = await stub.GetTemplate(templates_pb2.GetTemplateRequest(id=template_id),
                                     metadata=stack.meta())
        assert (got.subject, got.html, got.text) == ("s2", LOOP, "two")
        after = len((await stub.ListTemplates(templates_pb2.ListTemplatesRequest(),
                                              metadata=stack.meta())).templates)
        assert after == before
        broken = await c.post_form(path, {"name": "in place", "html": "#if($x", "text": ""})
        assert broken.status_code == 422 and f'action="{path}"' in broken.text
        foreign = await other.post_form(path, {"name": "taken", "html": "x", "text": ""})
        assert foreign.status_code == 404
        got = await stub.GetTemplate(templates_pb2.GetTemplateRequest(id=template_id),
                                     metadata=stack.meta())
        assert (got.name, got.html) == ("in place", LOOP)
        copy = await c.post_form("/messages", {"name": "copy", "html": LOOP, "text": ""})
        assert copy.status_code == 303 and not copy.headers["location"].startswith(path + "?")
    finally:
        await c.aclose()
        await other.aclose()


async def test_a_form_part_past_its_limit_is_400_naming_the_body(client: ConsoleClient) -> None:
    """A sign-in form whose field is past the form reader's part limit (1 MiB) is a 400
    saying the body could not be read, not the '404 no route' it was."""
    reply = await client.http.post("/login", data={"api_key": "k" * (1024 * 1024 + 10)})
    assert reply.status_code == 400, (reply.status_code, reply.text[:300])
    assert "body" in reply.text and "could not be read" in reply.text
    assert "no route" not in reply.text
