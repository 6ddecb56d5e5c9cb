"""What an outside tester's walkthrough found, where it is about what the page shows: in
headless chromium against the stack as ``make run`` starts it (test_outsider_findings.py
has the HTTP side)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.console.browser import SHOTS, WAIT_MS, DevStack, run_devstack

DEEP = "[" * 5000 + "]" * 5000


@pytest.fixture(scope="module")
def devstack(sync_api: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    yield from run_devstack(tmp_path_factory.mktemp("outsider-devrun"))


@pytest.fixture
def page(browser: Any, devstack: DevStack) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(devstack.url + "/login")
    page.get_by_label("API key").fill(devstack.api_key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview").wait_for()
    yield page
    context.close()


def shot(page: Any, name: str) -> None:
    (SHOTS / "outsider").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "outsider" / f"{name}.png"))


def test_preview_shows_the_servers_error_and_clears_the_old_one(
        sync_api: Any, devstack: DevStack, page: Any) -> None:
    """Finding 2: deep pasted JSON is "Wrong Format" with the API's reason; a preview the
    server refuses says the server's sentence (not a JSON-parse failure) and takes away the
    error an earlier preview marked. Finding 3: an over-long part is named beside it, in
    red, with what to do, and saving it is refused in the page with the text kept."""
    expect = sync_api.expect
    page.goto(devstack.url + "/messages/new")
    page.get_by_label("JSON I paste").check()
    page.locator("#pv-json").fill(DEEP)
    expect(page.locator("#err-json")).to_contain_text("nested deeper than 32 levels")
    # Finding 13: valid JSON that is not an object is pointed out.
    page.locator("#f-html").fill("$!data.get('a')")
    page.locator("#pv-json").fill("[1, 2, 3]")
    expect(page.locator("#pv-hint")).to_contain_text("The pasted JSON is a list, not an object")
    expect(page.locator("#pv-state")).to_contain_text("see the note below")
    page.locator("#pv-json").fill('{"array": []}')
    page.locator("#f-html").fill("ok\n#if($x")
    expect(page.locator("#err-html")).to_contain_text("Line 2")
    # Over the console's 4 MiB: the server answers 413 with its sentence.
    page.locator("#f-text").fill("z" * (4 * 1024 * 1024 + 10))
    state = page.locator("#pv-state")
    expect(state).to_contain_text("preview failed: the message is over 4 MiB")
    expect(page.locator("#err-html")).to_be_hidden()
    assert "bad" in (state.get_attribute("class") or "")
    shot(page, "preview-failed")

    long = "y" * (300 * 1024)
    page.locator("#f-text").fill("")
    page.locator("#f-html").fill(long)
    error = page.locator("#err-html")
    expect(error).to_contain_text("a message part may be up to 262,144")
    expect(error).to_contain_text("Shorten it")
    assert error.evaluate("e => getComputedStyle(e).color") != "rgb(128, 128, 128)"
    page.get_by_label("Name").fill("long one")
    page.get_by_role("button", name="Save message").click()
    expect(error).to_contain_text("a longer one is not saved")
    assert page.url.endswith("/messages/new")
    assert page.locator("#f-html").evaluate("e => e.value.length") == len(long)
    expect(page.get_by_role("button", name="Save message")).to_be_enabled()
    shot(page, "too-long")


def test_a_saved_message_remembers_its_json_param(
        sync_api: Any, devstack: DevStack, page: Any) -> None:
    """Finding 14: the preview's JSON param of a saved message is there when it is opened
    again (this browser remembers it; a link's own ?json= wins)."""
    event = httpx.post(f"{devstack.url}/api/v2/event", auth=("any", devstack.api_key),
                       json={"eventTypeKey": "cart", "keyValue": "c@x.example", "params": [
                           {"name": "items", "value": {"array": []}}]}, timeout=30)
    assert event.status_code == 200, event.text
    reply = httpx.post(f"{devstack.url}/api/v1/messages", auth=("any", devstack.api_key),
                       json={"name": "cart", "subject": "s", "html": "<p>x</p>"}, timeout=30)
    assert reply.status_code == 200, reply.text
    url = f"{devstack.url}/messages/{reply.json()['id']}"
    page.goto(url)
    box = page.locator("#pv-json-param")
    sync_api.expect(box).to_have_value("")
    box.fill("items")
    page.goto(url)
    sync_api.expect(box).to_have_value("items")
    page.goto(url + "?json=other")
    sync_api.expect(box).to_have_value("other")
