"""Past events feed segmentation (issue 13): imported over /api/v2/past_events, the workers
link each to its contact by the one identity rule and count it for segments at its own
``occurred`` time, and it never starts a workflow, by its type or by a segment change it
causes (real server, gateway and worker; SQLite or PostgreSQL; Redis/Valkey)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support import Stack
from tests.workflows.conftest import create_workflow, db_rows, eventually, runs_of

# Minutes are all eSputnik's format carries.
FORMAT = "%Y-%m-%dT%H:%M"
WAIT = [{"id": "wait", "type": "timer", "duration": "PT1H"}]


def _key(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def _email(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}@example.com"


async def _segment(s: Stack, conditions: dict[str, Any]) -> int:
    r = await s.http.post("/api/v1/segments", headers=s.auth(),
                          json={"name": f"past {secrets.token_hex(3)}", "conditions": conditions})
    assert r.status_code == 200, r.text
    sid = int(r.json()["id"])

    async def ready() -> bool:
        got = await s.http.get(f"/api/v1/segments/{sid}", headers=s.auth())
        return bool(got.json()["status"] == "ready")

    assert await eventually(ready)
    return sid


async def _import(s: Stack, *events: tuple[str, str, datetime]) -> list[int]:
    """Past events (type, email, occurred), all accepted; their ids."""
    r = await s.http.post("/api/v2/past_events", headers=s.auth(), json=[
        {"eventTypeKey": key, "keyValue": email, "occurred": at.strftime(FORMAT),
         "params": [{"name": "email", "value": email}]} for key, email, at in events])
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["ACCEPTED"] * len(events), r.text
    return [int(x["eventId"]) for x in r.json()["results"]]


async def _processed(s: Stack, event_id: int) -> dict[str, Any]:
    """The stored event once the workers processed it (it has its contact then)."""
    async def done() -> dict[str, Any] | None:
        rows = await db_rows(s, "SELECT processed_at, process_error FROM events WHERE id = :i",
                             i=event_id)
        if not rows or rows[0][0] is None:
            return None
        assert rows[0][1] is None, rows[0][1]
        r = await s.http.get(f"/api/v1/events/{event_id}", headers=s.auth())
        return dict(r.json())

    found: dict[str, Any] = await eventually(done)
    return found


async def _member(s: Stack, segment_id: int, contact_id: int) -> bool:
    r = await s.http.get(f"/api/v1/segments/{segment_id}/contacts/{contact_id}",
                         headers=s.auth())
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


async def test_a_past_event_links_its_contact_and_makes_it_a_member(stack: Stack) -> None:
    """A past event of 2 days ago: linked to the contact its email names (created by the
    identity rule), and the contact enters a segment on the type within P7D; the change
    names the event as its cause."""
    key = _key("imported")
    await stack.segmentation_on(key)
    sid = await _segment(stack, {"event": {"eventTypeKey": key, "within": "P7D"}})
    email = _email("past")
    (event_id,) = await _import(stack, (key, email, datetime.now(UTC) - timedelta(days=2)))
    stored = await _processed(stack, event_id)
    contact_id = int(stored["contactId"])
    r = await stack.http.get(f"/api/v1/contact/{contact_id}", headers=stack.auth())
    assert r.status_code == 200 and email in r.text, r.text
    assert await eventually(lambda: _member(stack, sid, contact_id))
    rows = await db_rows(stack, "SELECT change, event_id FROM segment_changes "
                         "WHERE segment_id = :sid AND contact_id = :c", sid=sid, c=contact_id)
    assert [tuple(r) for r in rows] == [("entered", event_id)]


async def test_a_past_event_counts_at_its_own_time(stack: Stack) -> None:
    """In a PT24H segment: a past event of 3 days ago makes no member (its window passed
    before it arrived), one of 2 hours ago does, and the contact is due to leave when that
    event is 24 hours old, not 24 hours after it arrived."""
    key = _key("window")
    await stack.segmentation_on(key)
    sid = await _segment(stack, {"event": {"eventTypeKey": key, "within": "PT24H"}})
    old_email, recent_email = _email("old"), _email("recent")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    recent_at = now - timedelta(hours=2)
    old_id, recent_id = await _import(stack, (key, old_email, now - timedelta(days=3)),
                                      (key, recent_email, recent_at))
    old = int((await _processed(stack, old_id))["contactId"])
    recent = int((await _processed(stack, recent_id))["contactId"])
    assert await eventually(lambda: _member(stack, sid, recent))
    assert not await _member(stack, sid, old)
    assert await db_rows(stack, "SELECT 1 FROM segment_changes WHERE contact_id = :c",
                         c=old) == []
    (due,) = await db_rows(stack, "SELECT due_at FROM segment_due WHERE segment_id = :sid "
                           "AND contact_id = :c", sid=sid, c=recent)
    due_at = due[0] if isinstance(due[0], datetime) else datetime.fromisoformat(str(due[0]))
    due_at = due_at.astimezone(UTC) if due_at.tzinfo else due_at.replace(tzinfo=UTC)
    assert due_at == recent_at + timedelta(hours=24)


async def test_a_past_event_starts_no_workflow(stack: Stack) -> None:
    """Neither a workflow triggered by the past event's type nor one on entering the
    segment it makes the contact enter starts a run; a live event of the type starts both
    (so the workflows are live)."""
    key = _key("quiet")
    await stack.segmentation_on(key)
    sid = await _segment(stack, {"event": {"eventTypeKey": key, "within": "P7D"}})
    by_type = await create_workflow(stack, {
        "name": f"on {key}", "active": True, "trigger": {"eventTypeKey": key},
        "start": "wait", "blocks": WAIT})
    by_segment = await create_workflow(stack, {
        "name": f"entered {sid}", "active": True,
        "trigger": {"segment": {"id": sid, "change": "entered"}}, "start": "wait",
        "blocks": WAIT})
    past_email, live_email = _email("quiet"), _email("loud")
    (event_id,) = await _import(stack, (key, past_email, datetime.now(UTC) - timedelta(days=1)))
    contact_id = int((await _processed(stack, event_id))["contactId"])
    assert await eventually(lambda: _member(stack, sid, contact_id))

    r = await stack.post_event({"eventTypeKey": key, "keyValue": live_email,
                                "params": [{"name": "email", "value": live_email}]})
    assert r.status_code == 200, r.text
    live_id = int(r.headers["X-Event-Id"])

    async def both_ran() -> bool:
        return all([await runs_of(stack, w) for w in (by_type, by_segment)])

    assert await eventually(both_ran)
    for workflow_id in (by_type, by_segment):
        assert [run["eventId"] for run in await runs_of(stack, workflow_id)] == [live_id]
