"""Segment screens against a stack with no worker, so the test itself runs the recount one
chunk at a time (``server.segments.loop.recount_step``, what the worker's loop calls) and
watches the page follow: the list, the definition in words, progress while building,
members paged with links to their contacts, errors naming the JSON path. Over real HTTP,
and once in headless chromium (Playwright's async API) with screenshots."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.db.models import utcnow
from server.segments.loop import recount_step
from tests.console.browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, require_browser
from tests.console.support import ConsoleClient, flat, signed_in
from tests.support import Backends, Stack, private_backends, start_stack

KYIV = 55
ELSEWHERE = 5
DEFINITION = {"name": "Kyiv", "conditions": {"all": [
    {"contact": {"field": "town", "op": "eq", "value": "Kyiv"}},
    {"not": {"event": {"eventTypeKey": "purchase", "within": "P7D"}}}]}}


@pytest.fixture(scope="module")
async def quiet(backends: Backends, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[Stack]:
    """A stack of its own with no worker: nothing recounts unless the test steps it."""
    own = private_backends(backends, tmp_path_factory.mktemp("segments-db"))
    stack = await start_stack(own, tmp_path_factory.mktemp("segments"), worker=False)
    contacts = [{"firstName": "Kyivan", "address": {"town": "Kyiv"}, "channels": [
        {"type": "email", "value": f"kyiv{i}.{secrets.token_hex(2)}@example.com"}]}
        for i in range(KYIV)]
    contacts += [{"firstName": "Lvivan", "address": {"town": "Lviv"}, "channels": [
        {"type": "email", "value": f"lviv{i}.{secrets.token_hex(2)}@example.com"}]}
        for i in range(ELSEWHERE)]
    for contact in contacts:
        r = await stack.http.post("/api/v1/contact", headers=stack.auth(), json=contact)
        assert r.status_code == 200, r.text
    try:
        yield stack
    finally:
        await stack.stop()
        own.close()


async def step(stack: Stack, chunk: int) -> bool:
    return await recount_step(stack.engine, now=utcnow(), chunk=chunk)


async def test_segment_pages_follow_the_recount(quiet: Stack) -> None:
    """Created from the form: building 0 of 60, then 25, 50 of 60 as chunks are counted,
    then ready with 55 members paged 50 at a time, each linking to its contact; the list
    shows name, members and status; the conditions read as sentences."""
    c = await signed_in(quiet)
    try:
        empty = await c.get("/segments")
        assert "No segments yet" in empty.text and "Segmentation" in empty.text
        new = await c.get("/segments/new")
        assert new.status_code == 200 and 'name="definition"' in new.text
        reply = await c.post_form("/segments", {"definition": json.dumps(DEFINITION)})
        assert reply.status_code == 303, reply.text[:500]
        url = reply.headers["location"].split("?")[0]
        page = (await c.get(url)).text
        text = flat(page)
        assert "Counting contacts: 0 of 60" in text and 'data-refresh="2"' in page
        assert 'id="build-progress" value="0" max="60"' in page
        assert "All of these: contact's town is \"Kyiv\" None of this: did purchase in the " \
               "last 7 days" in text, text
        # purchase never arrived: the page says its events would not count yet.
        assert "purchase : no event of this type" in text
        listing = flat((await c.get("/segments")).text)
        assert "Kyiv 0 building 0 of 60 contacts" in listing, listing
        seen = []
        while await step(quiet, 25):
            page = (await c.get(url)).text
            found = re.search(r'id="build-progress" value="(\d+)" max="60"', page)
            seen.append(int(found.group(1)) if found else "ready")
        assert seen == [25, 50, "ready"], seen
        page = (await c.get(url)).text
        text = flat(page)
        assert "data-refresh" not in page and "55 members" in text
        links = re.findall(r'<a href="/contacts/(\d+)">Contact \1</a>', page)
        assert len(links) == 50 and "1–50 of 55" in text
        more = (await c.get(f"{url}?from=50")).text
        assert len(re.findall(r'<a href="/contacts/(\d+)">', more)) == 5
        assert "51–55 of 55" in flat(more) and "← Previous" in more
        member = await c.get(f"/contacts/{links[0]}")
        assert member.status_code == 200 and "Kyiv" in member.text
        listing = flat((await c.get("/segments")).text)
        assert "Kyiv 55 ready 1" in listing, listing
    finally:
        await c.aclose()


async def test_bad_definitions_name_the_path_and_save_nothing(quiet: Stack) -> None:
    """A wrong op is a 400 page naming conditions.all[0].event.count.op with the text as
    typed; JSON that does not parse names its line; an edit makes a version; the other
    account gets 404 for the page, the save and the delete."""
    c = await signed_in(quiet)
    other = ConsoleClient(quiet.http_url)
    assert (await other.sign_in(quiet.other_key)).status_code == 303
    try:
        before = (await c.get("/segments")).text.count('href="/segments/')
        bad = {"name": "bad", "conditions": {"all": [{"event": {
            "eventTypeKey": "purchase", "count": {"op": "most", "value": 3}}}]}}
        reply = await c.post_form("/segments", {"definition": json.dumps(bad, indent=2)})
        assert reply.status_code == 400
        text = flat(reply.text)
        assert "Nothing was saved" in text
        assert "conditions.all[0].event.count.op : 'most' is not one of" in text, text
        assert "&#34;op&#34;: &#34;most&#34;" in reply.text  # the text as typed, kept
        broken = await c.post_form("/segments", {"definition": '{"name": "x",\n  "conditions": }'})
        assert broken.status_code == 400 and "at line 2, column 17" in broken.text
        assert (await c.get("/segments")).text.count('href="/segments/') == before
        made = await c.post_form("/segments", {"definition": json.dumps(
            {"name": "Lviv", "conditions": {"contact": {"field": "town", "op": "eq",
                                                         "value": "Lviv"}}})})
        url = made.headers["location"].split("?")[0]
        edited = await c.post_form(url, {"definition": json.dumps(
            {"name": "Lviv or Odesa", "conditions": {"contact": {
                "field": "town", "op": "oneOf", "value": ["Lviv", "Odesa"]}}})})
        assert edited.status_code == 303 and edited.headers["location"].endswith("saved=updated")
        page = flat((await c.get(edited.headers["location"])).text)
        assert "Saved as version 2" in page and 'contact\'s town is one of "Lviv", "Odesa"' in page
        segment_id = url.rsplit("/", 1)[1]
        assert (await other.get(url)).status_code == 404
        assert (await other.post_form(url, {"definition": json.dumps(DEFINITION)})
                ).status_code == 404
        assert (await other.post_form(f"{url}/delete", {})).status_code == 404
        assert "Lviv or Odesa" in (await c.get(url)).text
        gone = await c.post_form(f"{url}/delete", {})
        assert gone.status_code == 303 and "deleted=Lviv+or+Odesa" in gone.headers["location"]
        assert (await c.get(f"/segments/{segment_id}")).status_code == 404
    finally:
        await c.aclose()
        await other.aclose()


async def test_segments_in_a_browser(quiet: Stack) -> None:
    """In chromium: Segments → New segment, a wrong op shown naming its path, fixed and
    created; the status reads building with its progress and follows the recount by
    itself to ready, in place (what is typed in the definition meanwhile stays); a member's link opens the contact. Screenshots of each screen."""
    require_browser()
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=20_000)
    SHOTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(20_000)
        await page.goto(quiet.http_url + "/login")
        await page.get_by_label("API key").fill(quiet.api_key)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("navigation", name="Sections").get_by_role(
            "link", name="Segments", exact=True).click()
        await page.get_by_role("link", name="New segment").first.click()
        definition = page.get_by_label("Definition (JSON)")
        doc: dict[str, Any] = {"name": "Kyiv, browser", "conditions": {"all": [
            {"contact": {"field": "town", "op": "equals", "value": "Kyiv"}}]}}
        await definition.fill(json.dumps(doc, indent=2))
        await page.get_by_role("button", name="Create segment").click()
        alert = page.get_by_role("alert")
        await expect(alert).to_contain_text("conditions.all[0].contact.op")
        await expect(definition).to_have_attribute("aria-invalid", "true")
        await page.screenshot(path=str(SHOTS / "segment-error.png"), full_page=True)
        doc["conditions"]["all"][0]["contact"]["op"] = "eq"
        await definition.fill(json.dumps(doc, indent=2))
        await page.get_by_role("button", name="Create segment").click()
        await expect(page.locator("#segment-status")).to_contain_text("Counting contacts: 0 of 60")
        await page.screenshot(path=str(SHOTS / "segment-building.png"), full_page=True)
        # Typing in the definition meanwhile: the progress still follows, the text stays.
        typed = json.dumps({**doc, "name": "Kyiv, renamed"}, indent=2)
        await definition.fill(typed)
        assert await step(quiet, 30)
        await expect(page.locator("#build-progress")).to_have_attribute("value", "30")
        await expect(page.locator("#segment-status")).to_contain_text("30 of 60")
        await page.screenshot(path=str(SHOTS / "segment-progress.png"), full_page=True)
        while await step(quiet, 30):
            pass
        await expect(page.locator("#segment-status")).to_contain_text("55 members")
        await expect(page.locator("table.members tbody tr")).to_have_count(50)
        await expect(definition).to_have_value(typed)
        await expect(definition).to_be_focused()
        await page.screenshot(path=str(SHOTS / "segment.png"), full_page=True)
        await page.get_by_role("navigation", name="Sections").get_by_role(
            "link", name="Segments", exact=True).click()
        row = page.locator("table.segments tr").filter(has_text="Kyiv, browser")
        await expect(row).to_contain_text("55")
        await expect(row).to_contain_text("ready")
        await page.screenshot(path=str(SHOTS / "segments.png"), full_page=True)
        await row.get_by_role("link").click()
        await page.locator("table.members tbody a").first.click()
        await expect(page).to_have_url(re.compile(r"/contacts/\d+$"))
        await browser.close()
