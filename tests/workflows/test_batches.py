"""Events processed in batches (docs/workers.md): exactly once across two worker processes
SIGKILLed and restarted mid-batch, in commit order per contact across batches and workers,
and a poisoned event recorded on its own without holding up its batch."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from server.mail.sink import MailSink
from tests.support import Stack
from tests.workflows.conftest import (
    create_template,
    create_workflow,
    db_rows,
    eventually,
    unique_key,
)
from tests.workflows.test_workers import _ids_by_recipient, _stop, spawn_worker
from workers.settings import build_worker


async def _post_all(s: Stack, bodies: list[dict[str, Any]], *, parallel: int = 20) -> list[int]:
    sem = asyncio.Semaphore(parallel)

    async def post(body: dict[str, Any]) -> int:
        async with sem:
            r = await s.post_event(body)
            assert r.status_code == 200, r.text
            return int(r.headers["X-Event-Id"])

    return list(await asyncio.gather(*(post(b) for b in bodies)))


async def _unprocessed(s: Stack) -> int:
    return int((await db_rows(s, "SELECT count(*) FROM events WHERE processed_at IS NULL"))[0][0])


async def test_two_workers_killed_mid_batch_process_every_event_once(
        bare: Stack, sink: MailSink) -> None:
    """300 events of an email workflow, two worker processes with batches of 20, both
    SIGKILLed while letters go out and restarted: every event processed once (no error),
    one run per event, one letter per recipient, none repeated under a new Message-ID."""
    tag = unique_key("once")
    tid = await create_template(bare, name=tag, subject="Hi", html="<p>Hi</p>", text="Hi")
    await create_workflow(bare, {"name": tag, "active": True, "trigger": {"eventTypeKey": tag},
                                 "start": "mail", "blocks": [
                                     {"id": "mail", "type": "email", "templateId": tid}]})
    emails = [f"{tag}-{i}@test.local" for i in range(300)]
    ids = await _post_all(bare, [{"eventTypeKey": tag, "keyValue": e,
                                  "params": [{"name": "email", "value": e}]} for e in emails])
    first = [spawn_worker(bare, WF_TEST_BATCH="20"), spawn_worker(bare, WF_TEST_BATCH="20")]
    try:
        await eventually(lambda: _at_least(sink, emails, 20), timeout=60, interval=0.02)
        for proc in first:
            proc.send_signal(signal.SIGKILL)
        for proc in first:
            proc.wait()
        assert await _unprocessed(bare) > 0 or len(_ids_by_recipient(sink, emails)) < 300, \
            "the kill came too late to test anything"
        second = [spawn_worker(bare, WF_TEST_BATCH="20"), spawn_worker(bare, WF_TEST_BATCH="20")]
        try:
            await eventually(lambda: _at_least(sink, emails, 300), timeout=90, interval=0.2)
            await eventually(lambda: _completed(bare, 300), timeout=30)
        finally:
            for proc in second:
                _stop(proc)
    finally:
        for proc in first:
            _stop(proc)
    events = await db_rows(bare, "SELECT id, processed_at, process_error FROM events "
                               "WHERE id >= :lo AND id <= :hi", lo=min(ids), hi=max(ids))
    assert len(events) == 300
    assert all(e.processed_at is not None and e.process_error is None for e in events)
    runs = await db_rows(bare, "SELECT event_id, count(*) FROM workflow_runs GROUP BY event_id")
    assert sorted(r[0] for r in runs) == sorted(ids) and all(r[1] == 1 for r in runs)
    seen = _ids_by_recipient(sink, emails)
    assert set(seen) == set(emails)
    assert all(len(m) == 1 for m in seen.values()), "a repeat carried a new Message-ID"


async def _at_least(sink: MailSink, emails: list[str], n: int) -> bool:
    return len(_ids_by_recipient(sink, emails)) >= n


async def _completed(s: Stack, n: int) -> bool:
    rows = await db_rows(s, "SELECT count(*) FROM workflow_runs WHERE status = 'completed'")
    return int(rows[0][0]) >= n


async def test_events_of_a_contact_are_processed_in_commit_order(
        bare: Stack, sink: MailSink) -> None:
    """For 40 contacts a cart event then a purchase event (committed in that order), with
    a backlog of other events between them, processed by two workers in batches of 7: each
    contact's events get non-decreasing processed_at in id order, every cart run is stopped
    by its purchase and no letter goes out."""
    tag = unique_key("order")
    tid = await create_template(bare, name=tag, subject="Hi", html="<p>Hi</p>", text="Hi")
    await create_workflow(bare, {
        "name": tag, "active": True, "trigger": {"eventTypeKey": f"{tag}-cart"},
        "stop": {"eventTypeKeys": [f"{tag}-buy"]}, "start": "wait", "blocks": [
            {"id": "wait", "type": "timer", "duration": "PT2S", "next": "mail"},
            {"id": "mail", "type": "email", "templateId": tid}]})
    emails = [f"{tag}-{i}@example.com" for i in range(40)]
    workers = [spawn_worker(bare, WF_TEST_BATCH="7"), spawn_worker(bare, WF_TEST_BATCH="7")]
    try:
        async def contact(i: int, email: str) -> None:
            params = [{"name": "email", "value": email}]
            await _post_all(bare, [{"eventTypeKey": f"{tag}-cart", "keyValue": email,
                                    "params": params}])
            await _post_all(bare, [{"eventTypeKey": f"{tag}-view", "keyValue": email,
                                    "params": params + [{"name": "n", "value": n}]}
                                   for n in range(i % 5)])
            await _post_all(bare, [{"eventTypeKey": f"{tag}-buy", "keyValue": email,
                                    "params": params}])

        await asyncio.gather(*(contact(i, e) for i, e in enumerate(emails)))
        await eventually(lambda: _no_backlog(bare), timeout=60)
        await eventually(lambda: _stopped(bare, 40), timeout=30)
        await asyncio.sleep(2.5)  # past the timers: a run that missed its stop would mail
    finally:
        for proc in workers:
            _stop(proc)
    rows = await db_rows(bare, "SELECT e.id, e.key_value, e.contact_id, e.processed_at "
                             "FROM events e ORDER BY e.id")
    by_contact: dict[str, list[Any]] = {}
    for r in rows:
        if r.key_value in emails:
            by_contact.setdefault(r.key_value, []).append(r)
    assert len(by_contact) == 40
    for i, email in enumerate(emails):
        events = by_contact[email]
        assert len(events) == 2 + i % 5
        assert len({e.contact_id for e in events}) == 1 and events[0].contact_id is not None
        times = [str(e.processed_at) for e in events]
        assert times == sorted(times), "a later event of the contact was processed first"
    statuses = await db_rows(bare, "SELECT status, count(*) FROM workflow_runs GROUP BY status")
    assert dict(statuses) == {"stopped": 40}
    assert _ids_by_recipient(sink, emails) == {}


async def _no_backlog(s: Stack) -> bool:
    return await _unprocessed(s) == 0


async def _stopped(s: Stack, n: int) -> bool:
    rows = await db_rows(s, "SELECT count(*) FROM workflow_runs WHERE status = 'stopped'")
    return int(rows[0][0]) >= n


async def test_poisoned_event_is_recorded_without_holding_up_its_batch(bare: Stack) -> None:
    """30 events waiting as one batch, one of them failing in a processor every time: the
    other 29 are processed with their effects, the poisoned one is recorded failed with
    the reason (processed_at and process_error), and events after it are not held up."""
    tag = unique_key("poison")
    bodies = [{"eventTypeKey": tag, "keyValue": f"k{i}",
               "params": [{"name": "n", "value": i}] + (
                   [{"name": "poison", "value": "yes"}] if i == 11 else [])}
              for i in range(30)]
    ids = [await _post_all(bare, [b]) for b in bodies]
    event_ids = [i[0] for i in ids]
    handled: list[int] = []

    async def touchy(conn: Any, event: Any, ctx: Any) -> None:
        if any(name == "poison" for name, _ in event.params):
            raise ValueError("this event cannot be handled")
        handled.append(event.id)

    worker = build_worker(bare.settings, processors=[touchy], poll_delay=0.05)
    bare.worker = worker
    bare._tasks.append(asyncio.create_task(worker.main()))
    await eventually(lambda: _no_backlog(bare), timeout=30)
    rows = await db_rows(bare, "SELECT id, process_error FROM events WHERE id >= :lo ORDER BY id",
                       lo=event_ids[0])
    errors = {r.id: r.process_error for r in rows}
    poisoned = event_ids[11]
    assert errors[poisoned] is not None and "this event cannot be handled" in errors[poisoned]
    assert all(errors[i] is None for i in event_ids if i != poisoned)
    # Every good event reached the processor (some twice: a failed batch rolls back).
    committed = [i for i in handled if i in errors]
    assert sorted(set(committed)) == [i for i in event_ids if i != poisoned]
