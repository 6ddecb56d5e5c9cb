"""The seed's guide followed in the console by a real browser (headless Debian chromium) against
the stack as ``make run`` starts it: from the first event to the delivered letter.

Every screen is saved to tests/console/screenshots/ (the main ones are in docs/console/)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console.browser import (
    SHOTS,
    WAIT_MS,
    DevStack,
    run_devstack,
    shots_dir,
)

LOOP = ("#foreach($!item in $!data.get('array'))\n"
        "<p>$!item.get('name'): $!item.get('price')</p>\n"
        "#end")
# The seed's own loop, every variable of its items, as the guide prints it.
TEXT = ("#foreach($!item in $!data.get('array'))\n$!item.get('name')\n$!item.get('price')\n"
        "$!item.get('url')\n$!item.get('imageurl')\n$!item.get('brand')\n"
        "$!item.get('tags_weight')\n$!item.get('tags_oldprice')\n#end")
# The seed's abandoned cart, as its guide prints it.
SEED_URL = "https://site.com/catalog/suhaya-detskaya-molochnaya-smes-hipp-combiotic-2-750-g"
SEED_IMAGE = "https://site.com/uploads/product/big/20161122/20161122_7zvb.jpg"
CART = {"eventTypeKey": "abandoned_cart", "keyValue": "site@com.net", "params": [
    {"name": "email", "value": "site@ukr.net"},
    {"name": "items", "value": {"array": [
        {"name": "Hair styler", "price": "341", "url": SEED_URL, "imageurl": SEED_IMAGE,
         "brand": "Le Petit Olivier", "tags_weight": "200", "tags_oldprice": "467"},
        {"name": "Magnolia Nobile Парфумована вода", "price": "2341", "url": SEED_URL,
         "imageurl": SEED_IMAGE, "brand": "Acqua Di Parma", "tags_weight": "100",
         "tags_oldprice": "4467"}]}}]}
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}




@pytest.fixture(scope="module")
def devstack(sync_api: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    yield from run_devstack(tmp_path_factory.mktemp("console-devrun"))


def curl_event(stack: DevStack, body: dict[str, Any]) -> int:
    """The event sent as the seed says, by a real curl; returns the X-Event-Id."""
    out = subprocess.run(
        ["curl", "-s", "-i", "-u", f"any:{stack.api_key}", "-H", "Content-Type: application/json",
         f"{stack.url}/api/v2/event", "-d", json.dumps(body, ensure_ascii=False)],
        capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.startswith("HTTP/1.1 200"), out
    found = re.search(r"(?im)^x-event-id:\s*(\d+)", out)
    assert found, out
    return int(found.group(1))


def go(page: Any, section: str) -> None:
    """Follow a link of the top navigation."""
    page.get_by_role("navigation", name="Sections").get_by_role(
        "link", name=section, exact=True).click()


class Shots:
    def __init__(self, page: Any) -> None:
        self.page = page
        self.dir = shots_dir()
        self.n = 0

    def take(self, name: str, *, full: bool = True) -> Path:
        """A screenshot; ``full=False`` keeps to the window (sandboxed frames only show there)."""
        self.n += 1
        path = self.dir / f"{self.n:02d}-{name}.png"
        if not full:  # the window from the top: the section links stay in the picture
            self.page.evaluate("window.scrollTo(0, 0)")
        self.page.wait_for_timeout(150)
        self.page.screenshot(path=str(path), full_page=full)
        return path


def test_seed_guide_from_first_event_to_delivered_letter(
        sync_api: Any, devstack: DevStack, browser: Any) -> None:
    """Sign in, send the abandoned cart with curl, find it and its body, write the seed's loop
    with a live preview (both items; a syntax error marked at its line; fixed), create the
    workflow with a short timer, watch the run complete and the letter show as sent."""
    expect = sync_api.expect
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    shots = Shots(page)
    url = devstack.url

    # Sign in with the account's API key.
    page.goto(url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    shots.take("sign-in")
    page.get_by_label("API key").fill("wrong-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not known")
    page.get_by_label("API key").fill(devstack.api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_text("No events yet")).to_be_visible()
    expect(page.locator("pre.cmd")).to_contain_text(f"{url}/api/v2/event")
    shots.take("overview-empty")

    # The seed's abandoned cart, sent with curl.
    event_id = curl_event(devstack, CART)
    go(page, "Event types")
    expect(page.get_by_role("link", name="abandoned_cart", exact=True)).to_be_visible()
    shots.take("event-types")
    page.get_by_role("link", name="abandoned_cart", exact=True).click()
    expect(page.locator("table.shape")).to_contain_text("items.array[].price")
    shots.take("event-type")

    # Automation → Event history, click the event: its body as received.
    go(page, "Event history")
    page.get_by_label("Event type").select_option("abandoned_cart")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.events tbody tr")).to_have_count(1)
    shots.take("event-history")
    page.locator("table.events tbody a").first.click()
    expect(page).to_have_url(re.compile(rf"/events/{event_id}$"))
    body = page.locator("#event-body")
    expect(body).to_contain_text('"eventTypeKey": "abandoned_cart"')
    expect(body).to_contain_text("Magnolia Nobile Парфумована вода")
    shots.take("event-body")

    # A message with the seed's loop, previewed against that event ("View message").
    page.get_by_role("link", name="Use this event in a message preview").click()
    page.get_by_label("Name").fill("Cart")
    page.get_by_label("Subject").fill("You left $!data.get('array').size() items in your cart")
    page.locator("#f-html").fill(LOOP)
    page.locator("#f-text").fill(TEXT)
    # Nine lines in a six-row editor: scrolled to the end, the line numbers follow the text.
    page.locator("#f-text").evaluate("e => { e.scrollTop = e.scrollHeight; }")
    page.wait_for_function("""() => { const t = document.querySelector('#f-text');
        const g = document.querySelector('[data-editor=text] .gutter');
        return t.scrollTop > 0 && Math.abs(g.scrollTop - t.scrollTop) < 1; }""")
    # Without the email block's JSON param the loop finds no 'array': the preview says why.
    hint = page.locator("#pv-hint")
    expect(hint).to_contain_text("Nothing was printed")
    expect(hint).to_contain_text("'array' is inside items")
    hint.get_by_role("button", name="Use JSON param items").click()
    expect(page.get_by_label("JSON param")).to_have_value("items")
    expect(hint).to_be_hidden()
    frame = page.frame_locator("#pv-html")
    expect(frame.locator("body")).to_contain_text("Hair styler: 341")
    expect(frame.locator("body")).to_contain_text("Magnolia Nobile Парфумована вода: 2341")
    expect(page.locator("#pv-subject")).to_have_text("You left 2 items in your cart")
    expect(page.locator("#pv-text")).to_contain_text("Le Petit Olivier\n200\n467")
    expect(page.locator("#pv-text")).to_contain_text("Acqua Di Parma")
    assert page.locator("#pv-html").get_attribute("sandbox") == ""
    shots.take("message-preview", full=False)

    # Break the syntax: the error shows at its line, marked in the editor; then fix it.
    page.locator("#f-html").fill(LOOP.replace("$!item.get('name')", "#if($!item.get('name')"))
    error = page.locator("#err-html")
    expect(error).to_contain_text("Line 2, column")
    expect(page.locator("[data-editor=html] .gutter span.bad")).to_have_text("2")
    expect(page.locator("#f-html")).to_have_attribute("aria-invalid", "true")
    shots.take("message-error", full=False)
    page.locator("#f-html").fill(LOOP)
    expect(error).to_be_hidden()
    expect(frame.locator("body")).to_contain_text("Magnolia Nobile Парфумована вода: 2341")

    # Pasted JSON that does not parse: "Wrong Format".
    page.get_by_label("JSON I paste").check()
    page.locator("#pv-json").fill('{"array": [')
    expect(page.locator("#err-json")).to_contain_text("Wrong Format")
    page.get_by_label("an event from history").check()
    page.get_by_role("button", name="Save message").click()
    expect(page.get_by_role("status").filter(has_text="Saved as message")).to_be_visible()
    template_id = page.url.rsplit("/", 1)[1].split("?")[0]

    # Saving again saves in place: the same id, the new subject (UpdateTemplate).
    page.get_by_label("Subject").fill("You left $!data.get('array').size() items in your cart!")
    page.get_by_role("button", name="Save message", exact=True).click()
    expect(page.get_by_role("status").filter(has_text=f"Saved message {template_id}.")
           ).to_be_visible()
    assert page.url.rsplit("/", 1)[1].split("?")[0] == template_id
    expect(page.get_by_label("Subject")).to_have_value(
        "You left $!data.get('array').size() items in your cart!")
    page.get_by_label("Subject").fill("You left $!data.get('array').size() items in your cart")
    page.get_by_role("button", name="Save message", exact=True).click()
    expect(page.get_by_role("status").filter(has_text=f"Saved message {template_id}.")
           ).to_be_visible()

    # The abandoned-cart workflow: wait (short), then the email to ${email} with items.
    go(page, "Workflows")
    expect(page.get_by_text("No workflows yet")).to_be_visible()
    page.get_by_role("link", name="New workflow").click()
    # The account's one event type is offered as the trigger.
    expect(page.get_by_label("Trigger: event type")).to_have_value("abandoned_cart")
    page.get_by_label("Name").fill("abandoned cart")
    page.get_by_label("Wait (ISO 8601 duration)").fill("3 seconds")
    page.get_by_role("button", name="Create workflow").click()
    expect(page.get_by_role("alert")).to_contain_text("correct the fields marked below")
    expect(page.get_by_label("Wait (ISO 8601 duration)")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#w-wait-err")).to_contain_text("not an ISO 8601 duration")
    page.get_by_label("Wait (ISO 8601 duration)").fill("PT3S")
    page.get_by_label("Message").select_option(template_id)
    expect(page.get_by_label("Contact's email")).to_have_value("${email}")
    expect(page.get_by_label("JSON param")).to_have_value("items")
    shots.take("workflow-new")
    page.get_by_role("button", name="Create workflow").click()
    expect(page.get_by_role("switch")).to_have_attribute("aria-checked", "true")
    expect(page.locator("svg.diagram")).to_contain_text("wait · timer")
    expect(page.locator("svg.diagram")).to_contain_text("mail · email")
    workflow_url = page.url.split("?")[0]
    # No run yet: the event sent before the workflow existed started none; how to send one.
    runs = page.get_by_role("region", name=re.compile("^Runs"))
    expect(runs).to_contain_text("No runs yet")
    expect(runs.locator("pre.cmd")).to_contain_text(f"{url}/api/v2/event")

    # The simulator runs it on simulated time against the event from history.
    page.get_by_role("button", name="Simulate").click()
    result = page.get_by_role("region", name="Simulation result")
    expect(result).to_contain_text("1 run, 2 steps, 1 message")
    expect(result).to_contain_text("site@ukr.net")
    shots.take("workflow-simulator")

    # A new event starts a run; it waits in the timer, then completes.
    curl_event(devstack, CART)
    page.goto(workflow_url)
    run_link = page.get_by_role("link", name=re.compile(r"^Run \d+$")).first
    expect(run_link).to_be_visible(timeout=30_000)
    shots.take("workflow")
    run_link.click()
    expect(page.locator("#run-status")).to_have_text("completed", timeout=90_000)
    expect(page.locator("table")).to_contain_text("mail")
    shots.take("run-completed")

    # The letter in Sent messages, and in the development mail sink.
    go(page, "Sent messages")
    row = page.locator("table.sent tbody tr").first
    expect(row).to_contain_text("site@ukr.net")
    expect(row).to_contain_text("You left 2 items in your cart")
    expect(row.locator(".status")).to_have_text("sent", timeout=30_000)
    # Where "sent" went: the sink's folder of letters, named on the page.
    expect(page.locator("#delivery")).to_contain_text(f"{devstack.data_dir.resolve()}/mail/")
    shots.take("sent-messages")
    row.get_by_role("link", name="You left 2 items in your cart").click()
    expect(page.locator("#letter-subject")).to_have_text("You left 2 items in your cart")
    letter = page.frame_locator("#letter-html").locator("body")
    expect(letter).to_contain_text("Hair styler: 341")
    expect(letter).to_contain_text("Magnolia Nobile Парфумована вода: 2341")
    expect(page.locator("#letter-text")).to_contain_text("Hair styler\n341\nhttps://site.com/catalog/")
    shots.take("sent-letter", full=False)
    letters = list((devstack.data_dir / "mail").glob("*.eml"))
    assert letters and any("Hair styler" in p.read_text(errors="replace") for p in letters)

    # The rest of the screens, as a person finds them afterwards.
    go(page, "Overview")
    expect(page.locator(".tile").filter(has_text="Messages")).to_contain_text("1")
    shots.take("overview")
    go(page, "Contacts")
    page.get_by_label("Email").fill("site@ukr.net")
    page.get_by_role("button", name="Search").click()
    page.locator("table tbody a").first.click()
    expect(page.locator("ol.timeline li")).to_have_count(2)
    shots.take("contact")
    go(page, "Messages")
    shots.take("messages")

    phone = browser.new_context(viewport=PHONE, storage_state=context.storage_state())
    small = phone.new_page()
    shots.page = small
    small.goto(url + "/")
    expect(small.get_by_role("heading", name="Overview")).to_be_visible()
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shots.take("phone-overview")
    small.goto(url + f"/messages/{template_id}?json=items")
    expect(small.frame_locator("#pv-html").locator("body")).to_contain_text("Hair styler")
    shots.take("phone-message")
    phone.close()

    # Sign out ends the session.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login\?signed_out=1$"))
    expect(page.get_by_role("status")).to_contain_text("You are signed out")
    page.goto(url + "/events")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    context.close()


def curl_status(stack: DevStack, body: dict[str, Any]) -> tuple[int, str]:
    """A real curl of the event: the HTTP status and the answer's body."""
    out = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", "-u", f"any:{stack.api_key}",
         "-H", "Content-Type: application/json", f"{stack.url}/api/v2/event",
         "-d", json.dumps(body, ensure_ascii=False)],
        capture_output=True, text=True, timeout=30, check=True).stdout
    text, _, code = out.rpartition("\n")
    return int(code), text


def sign_in(sync_api: Any, page: Any, stack: DevStack) -> None:
    page.goto(stack.url + "/login")
    page.get_by_label("API key").fill(stack.api_key)
    page.get_by_role("button", name="Sign in").click()
    sync_api.expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_event_type_settings_make_a_param_required(
        sync_api: Any, devstack: DevStack, browser: Any) -> None:
    """On the type's page, orderId set required and segmentation on, saved: the page says
    so, and an event without orderId sent with curl is refused with a 400 naming it."""
    expect = sync_api.expect
    order = {"eventTypeKey": "order_created", "keyValue": "site@com.net", "params": [
        {"name": "orderId", "value": "A-1001"}, {"name": "total", "value": 2682},
        {"name": "email", "value": "site@ukr.net"}]}
    assert curl_status(devstack, order)[0] == 200
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    sign_in(sync_api, page, devstack)
    go(page, "Event types")
    page.get_by_role("link", name="order_created", exact=True).click()
    recorded = page.get_by_role("region", name="Params as recorded")
    expect(recorded.locator("tr").filter(has_text="orderId")).to_contain_text("string")
    expect(recorded.locator("tr").filter(has_text="total")).to_contain_text("number")
    page.get_by_label(re.compile(r"^Check of param \d+ \(orderId\)$")).select_option("required")
    page.get_by_label("Segmentation").check()
    page.get_by_role("button", name="Save settings").click()
    notice = page.get_by_role("status").filter(has_text="Settings saved")
    expect(notice).to_contain_text("without orderId is refused with 400")
    expect(page.get_by_label(re.compile(r"^Check of param \d+ \(orderId\)$"))).to_have_value("required")
    expect(page.get_by_label("Segmentation")).to_be_checked()
    expect(page.get_by_text(re.compile(r"on since \d{4}-"))).to_be_visible()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "event-type-settings.png"), full_page=True)

    without = {**order, "params": [p for p in order["params"] if p["name"] != "orderId"]}
    status, answer = curl_status(devstack, without)
    assert status == 400 and "orderId" in answer, (status, answer)
    assert curl_status(devstack, order)[0] == 200

    # A name typed twice: the error stands beside the row, nothing saved.
    page.get_by_label("Param 4 name").fill("orderId")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    bad = page.get_by_label("Param 4 name")
    expect(bad).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#rule-err-3")).to_contain_text("duplicates")
    page.screenshot(path=str(SHOTS / "event-type-settings-error.png"), full_page=True)
    go(page, "Event types")
    expect(page.locator("tr").filter(has_text="order_created")).to_contain_text("orderId")
    context.close()


def test_keyboard_reaches_the_navigation_and_the_editor(
        sync_api: Any, devstack: DevStack, browser: Any) -> None:
    """Skip link first, then every section link by Tab; the editor's fields carry labels."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(devstack.url + "/login")
    page.get_by_label("API key").fill(devstack.api_key)
    page.keyboard.press("Enter")
    sync_api.expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    seen = []
    for _ in range(10):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.textContent.trim()"))
    for label in ("Overview", "Event types", "Event history", "Messages", "Workflows",
                  "Contacts", "Sent messages", "Sign out"):
        assert label in seen, seen
    page.goto(devstack.url + "/messages/new")
    for label in ("Name", "Subject", "HTML body", "Text body"):
        assert page.get_by_label(label).count() >= 1, label
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
        ".filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.id || e.name)")
    assert unlabelled == []
    context.close()


# Text colour against the first opaque background behind it, as WCAG 2 computes contrast.
CONTRAST_JS = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!own || !box.width || getComputedStyle(el).visibility === "hidden") continue;
    const style = getComputedStyle(el);
    const a = lum(rgb(style.color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) bad.push(`${el.tagName}.${el.className}: ${ratio.toFixed(2)} "${el.textContent.trim().slice(0, 30)}"`);
  }
  return bad;
}"""
UNLABELLED_JS = (
    "[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
    ".filter(e => !e.labels.length && !e.getAttribute('aria-label')"
    " && !e.getAttribute('aria-labelledby')).map(e => e.id || e.name)")
# Chromium's own accessibility tree: every control and frame it exposes must have a name.
NAMED_ROLES = {"button", "link", "textbox", "searchbox", "combobox", "listbox", "checkbox",
               "radio", "switch", "spinbutton", "slider", "Iframe", "image", "img", "progressbar",
               "navigation", "region"}


def unnamed_controls(page: Any) -> list[str]:
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    bad = []
    for n in nodes:
        role = (n.get("role") or {}).get("value", "")
        if n.get("ignored") or role not in NAMED_ROLES:
            continue
        if not str((n.get("name") or {}).get("value", "")).strip():
            bad.append(f"{role} (node {n.get('backendDOMNodeId')})")
    return bad


# Landmarks and headings: one main, the banner and the labelled section navigation when
# signed in, exactly one h1, headings never skipping a level downwards.
STRUCTURE_JS = """(signedIn) => {
  const bad = [];
  if (document.querySelectorAll("main").length !== 1) bad.push("not exactly one <main>");
  if (signedIn && !document.querySelector("header nav[aria-label]")) bad.push("no labelled nav");
  if (document.querySelectorAll("h1").length !== 1) bad.push("not exactly one <h1>");
  if (!document.title.trim()) bad.push("no title");
  if (!document.documentElement.lang) bad.push("no lang");
  let last = 1;
  for (const h of document.querySelectorAll("main h1, main h2, main h3, main h4")) {
    const level = Number(h.tagName[1]);
    if (level > last + 1) bad.push(`${h.tagName} "${h.textContent.trim()}" after h${last}`);
    last = level;
  }
  const ids = [...document.querySelectorAll("[id]")].map((e) => e.id);
  const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (twice.length) bad.push(`duplicate ids ${twice}`);
  return bad;
}"""
# What Tab reaches first in <main>: each must show a focus outline.
FOCUS_JS = """() => {
  const el = document.activeElement, s = getComputedStyle(el);
  return { tag: el.tagName, text: (el.textContent || el.value || "").trim().slice(0, 30),
           visible: s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2,
           inMain: !!el.closest("main") };
}"""


def seeded_screens(stack: DevStack) -> list[tuple[str, str]]:
    """Every screen with something on it: an event type with events, a message, a workflow
    with a completed run and its letter, a contact, a ready segment; the paths to visit."""
    api = httpx.Client(base_url=stack.url, auth=("any", stack.api_key), timeout=30)
    cart = {**CART, "eventTypeKey": "a11y_cart"}
    template = api.post("/api/v1/messages", json={
        "name": "A11y cart", "subject": "Your cart", "html": LOOP, "text": TEXT}).json()["id"]
    workflow = api.post("/api/v1/workflows", json={
        "name": "a11y cart", "active": True, "trigger": {"eventTypeKey": "a11y_cart"},
        "start": "wait", "blocks": [
            {"id": "wait", "type": "timer", "duration": "PT1S", "next": "mail"},
            {"id": "mail", "type": "email", "templateId": template, "to": "${email}",
             "jsonParam": "items"}]}).json()["id"]
    curl_event(stack, cart)  # the type exists from its first event on
    api.patch("/api/v1/event-types/a11y_cart", json={"segmentation": True}).raise_for_status()
    event_id = curl_event(stack, cart)
    segment = api.post("/api/v1/segments", json={
        "name": "a11y carts", "conditions": {"all": [
            {"event": {"eventTypeKey": "a11y_cart", "within": "P7D"}}]}}).json()["id"]
    run = message = None
    for _ in range(120):
        runs = api.get(f"/api/v1/workflows/{workflow}/runs").json()
        runs = runs.get("runs", runs) if isinstance(runs, dict) else runs
        done = [r for r in runs if r["status"] == "completed"]
        if done:
            run = done[0]
            msgs = api.get(f"/api/v1/workflow-runs/{run['id']}/messages").json()["messages"]
            if msgs:
                message = msgs[0]
                break
        time.sleep(0.5)
    assert run and message, "the a11y workflow's run did not complete with its letter"
    api.close()
    # (screenshot name, path): a screen of one thing is named by its kind, not its id.
    return [("overview", "/"), ("event-types", "/event-types"),
            ("event-type", "/event-types/a11y_cart"), ("events", "/events"),
            ("event", f"/events/{event_id}"), ("messages", "/messages"),
            ("message-new", "/messages/new"),
            ("message", f"/messages/{template}?event={event_id}"), ("workflows", "/workflows"),
            ("workflow-new", "/workflows/new"), ("workflow", f"/workflows/{workflow}"),
            ("run", f"/runs/{run['id']}"), ("contacts", "/contacts"),
            ("contact", f"/contacts/{run['contactId']}"), ("segments", "/segments"),
            ("segment-new", "/segments/new"), ("segment", f"/segments/{segment}"),
            ("sent", "/sent"), ("sent-letter", f"/sent/{message['id']}"),
            ("not-found", "/events/999999999")]


@pytest.fixture(scope="module")
def screens(devstack: DevStack) -> list[tuple[str, str]]:
    return seeded_screens(devstack)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_every_screen_is_accessible(sync_api: Any, devstack: DevStack, browser: Any,
                                    screens: list[tuple[str, str]], size: str) -> None:
    """Each screen, at 1280x800 and at 390x844 (touch), in chromium: every control, frame and
    region has an accessible name, landmarks and headings are in place, Tab reaches the
    content with a visible focus ring, text meets WCAG AA contrast, and on the phone every
    section link is on screen and nothing scrolls sideways. A screenshot of each."""
    expect = sync_api.expect
    viewport = DESKTOP if size == "desktop" else PHONE
    extra = {"is_mobile": True, "has_touch": True} if size == "phone" else {}
    context = browser.new_context(viewport=viewport, **extra)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    SHOTS.mkdir(exist_ok=True)
    page.goto(devstack.url + "/login")
    assert page.evaluate(STRUCTURE_JS, False) == [], "/login"
    assert unnamed_controls(page) == [], "/login"
    assert page.evaluate(CONTRAST_JS) == [], "/login"
    page.screenshot(path=str(SHOTS / f"{size}-sign-in.png"), full_page=True)
    page.get_by_label("API key").fill(devstack.api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    nav = page.get_by_role("navigation", name="Sections")
    problems: dict[str, list[str]] = {}
    for slug, path in screens:
        page.goto(devstack.url + path)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(SHOTS / f"{size}-{slug}.png"), full_page=True)
        found = [*page.evaluate(STRUCTURE_JS, True), *unnamed_controls(page),
                 *page.evaluate(UNLABELLED_JS), *page.evaluate(CONTRAST_JS)]
        # Skip link, then into the page: the first few stops all show where focus is.
        page.locator("body").focus()
        for _ in range(12):
            page.keyboard.press("Tab")
            stop = page.evaluate(FOCUS_JS)
            if not stop["visible"]:
                found.append(f"focus not visible on {stop['tag']} {stop['text']!r}")
            if stop["inMain"]:
                break
        else:
            found.append("Tab does not reach the content within 12 stops")
        if size == "phone":
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > PHONE["width"]:
                found.append(f"scrolls sideways: {width}px")
            for link in nav.get_by_role("link").all():
                box = link.bounding_box()
                if not (box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]):
                    found.append(f"section link {link.text_content()} off screen: {box}")
        if found:
            problems[path] = found
    assert problems == {}, problems
    if size == "phone":
        # The last section is a tap away, not hidden past the edge.
        nav.get_by_role("link", name="Sent messages").tap()
        expect(page.get_by_role("heading", name="Sent messages")).to_be_visible()
        expect(nav.get_by_role("link", name="Sent messages")).to_have_attribute(
            "aria-current", "page")
    context.close()


def test_bulk_import_of_a_csv_restores_deleted_contacts(
        sync_api: Any, devstack: DevStack, browser: Any) -> None:
    """Contacts → Import contacts with a pasted CSV: a contact deleted earlier is listed as
    DELETED with what to do; ticking "Bring back contacts deleted earlier" imports it under
    its old id; a CSV with an unknown column says Wrong Format naming it."""
    expect = sync_api.expect
    api = httpx.Client(base_url=devstack.url, auth=("any", devstack.api_key), timeout=30)
    gone = f"gone.{int(time.time() * 1000)}@example.com"
    old_id = api.post("/api/v1/contact", json={
        "firstName": "Old", "channels": [{"type": "email", "value": gone}]}).json()["id"]
    # A later contact, so the deleted one's id is not the highest (SQLite would give it to
    # the next new contact).
    assert api.post("/api/v1/contact", json={"channels": [
        {"type": "email", "value": f"later.{gone}"}]}).status_code == 200
    assert api.delete(f"/api/v1/contact/{old_id}").status_code == 200
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    sign_in(sync_api, page, devstack)
    go(page, "Contacts")
    data = page.get_by_label("Contacts (CSV or JSON list)")
    data.fill("email,firstName,shoeSize\nx@example.com,X,44\n")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#imp-state")).to_contain_text('Wrong Format: unknown column "shoeSize"')
    data.fill(f'email,firstName,lastName,address,town\n{gone},Back,Lee,"Khreshchatyk 1, 2",Kyiv\n'
              f"new.{old_id}@example.com,New,,,Lviv\n")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#imp-state")).to_have_text("Done: 1 imported, 1 refused.")
    expect(page.locator("#imp-errors")).to_contain_text("Contact 1: DELETED")
    expect(page.locator("#imp-next")).to_contain_text('tick "Bring back contacts deleted earlier"')
    page.get_by_label("Bring back contacts deleted earlier").check()
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#imp-state")).to_have_text("Done: 2 imported, 0 refused.")
    expect(page.locator("#imp-next")).to_be_hidden()
    expect(page.locator("#imp-progress")).to_have_attribute("value", "2")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "contacts-import.png"), full_page=True)
    back = api.get(f"/api/v1/contact/{old_id}").json()
    assert back["firstName"] == "Back" and back["lastName"] == "Lee"
    page.goto(f"{devstack.url}/contacts/{old_id}")
    expect(page.locator("dl")).to_contain_text("Khreshchatyk 1, 2")
    expect(page.locator("dl")).to_contain_text("Kyiv")
    api.close()
    context.close()
