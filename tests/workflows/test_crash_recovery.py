"""Issue 12 finding 7, recovery after a crash in seconds: worker processes SIGKILLed twice
under load and restarted; every acked event is processed once and its run's webhook call
and letter arrive within 30 s of the last restart (claims of a dead worker lapse within
seconds: docs/workers.md, "Steps"), repeats carrying the same Idempotency-Key / Message-ID.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

from server.mail.sink import MailSink
from tests.support import Stack
from tests.workflows.conftest import (
    create_template,
    create_workflow,
    db_rows,
    eventually,
    unique_key,
)
from tests.workflows.test_webhook import Receiver
from tests.workflows.test_workers import _ids_by_recipient, _stop, spawn_worker

EVENTS = 300
RECOVERY_SECONDS = 30.0


async def _load(s: Stack, tag: str, emails: list[str], acked: list[int]) -> None:
    """The events, 10 at a time, about 150 a second: load while the workers die."""
    for start in range(0, len(emails), 10):
        async def post(email: str) -> None:
            r = await s.post_event({"eventTypeKey": tag, "keyValue": email,
                                    "params": [{"name": "email", "value": email}]})
            assert r.status_code == 200, r.text
            acked.append(int(r.headers["X-Event-Id"]))

        await asyncio.gather(*(post(e) for e in emails[start:start + 10]))
        await asyncio.sleep(0.05)


async def test_workers_killed_under_load_recover_within_seconds(
        bare: Stack, sink: MailSink) -> None:
    """300 events into a webhook-then-email workflow while two worker processes are
    SIGKILLed twice and restarted: each acked event processed once (one run, two steps),
    every run's call and letter delivered within 30 s of the last restart, repeats with the
    same Idempotency-Key / Message-ID."""
    receiver = Receiver(failures=0)
    server, task, url = await receiver.start()
    try:
        tag = unique_key("crash").replace("-", "_")
        tid = await create_template(bare, name=tag, subject="Hi", html="<p>Hi</p>", text="Hi")
        await create_workflow(bare, {
            "name": tag, "active": True, "trigger": {"eventTypeKey": tag}, "start": "call",
            "blocks": [{"id": "call", "type": "webhook", "url": url, "next": "mail"},
                       {"id": "mail", "type": "email", "templateId": tid}]})
        emails = [f"{tag}-{i}@test.local" for i in range(EVENTS)]
        acked: list[int] = []
        workers = [spawn_worker(bare, WF_TEST_BATCH="20"), spawn_worker(bare, WF_TEST_BATCH="20")]
        load = asyncio.create_task(_load(bare, tag, emails, acked))
        try:
            restarted = 0.0
            for calls in (30, 120):
                await eventually(lambda n=calls: _calls_at_least(receiver, n), timeout=60,
                                 interval=0.02)
                for proc in workers:
                    proc.send_signal(signal.SIGKILL)
                for proc in workers:
                    proc.wait()
                workers = [spawn_worker(bare, WF_TEST_BATCH="20"),
                           spawn_worker(bare, WF_TEST_BATCH="20")]
                restarted = time.monotonic()
            await load
            assert len(receiver.calls) < EVENTS or len(_ids_by_recipient(sink, emails)) < EVENTS, \
                "the last kill came too late to test anything"
            left = RECOVERY_SECONDS - (time.monotonic() - restarted)
            await eventually(lambda: _all_delivered(bare, receiver, sink, emails),
                             timeout=max(left, 1.0), interval=0.2)
            recovery = time.monotonic() - restarted
        finally:
            load.cancel()
            for proc in workers:
                _stop(proc)
        await _check_once(bare, receiver, sink, emails, acked, tag)
        wanted = set(emails)
        letters = sum(1 for m in sink.received for r in m.rcpt_tos if r in wanted)
        print(f"\ncrash recovery: sent {EVENTS}, acked {len(acked)}, stored and processed "
              f"{len(acked)} (one run each, 2 steps), 2 kills of 2 workers; delivered "
              f"{len(receiver.calls)} webhook calls ({len(receiver.calls) - EVENTS} repeats, "
              f"same Idempotency-Key) and {letters} letters ({letters - EVENTS} repeats, same "
              f"Message-ID); all "
              f"delivered {recovery:.1f} s after the last restart (bound {RECOVERY_SECONDS:.0f})")
    finally:
        server.should_exit = True
        await task


async def _calls_at_least(receiver: Receiver, n: int) -> bool:
    return len(receiver.calls) >= n


class _Progress:
    """Deliveries so far: true once every run's call and letter arrived (and the runs
    completed); its repr says how far it got, for the failure message."""

    def __init__(self, calls: int, letters: int, completed: int, unprocessed: int) -> None:
        self.calls, self.letters = calls, letters
        self.completed, self.unprocessed = completed, unprocessed

    def __bool__(self) -> bool:
        return min(self.calls, self.letters, self.completed) >= EVENTS

    def __repr__(self) -> str:
        return (f"{self.calls} calls, {self.letters} letters, {self.completed} runs completed, "
                f"{self.unprocessed} events unprocessed, of {EVENTS}")


async def _all_delivered(s: Stack, receiver: Receiver, sink: MailSink, emails: list[str]
                         ) -> _Progress:
    keys = {headers["idempotency-key"] for headers, _ in receiver.calls}
    done = await db_rows(s, "SELECT count(*) FROM workflow_runs WHERE status = 'completed'")
    left = await db_rows(s, "SELECT count(*) FROM events WHERE processed_at IS NULL")
    return _Progress(len(keys), len(_ids_by_recipient(sink, emails)), int(done[0][0]),
                     int(left[0][0]))


async def _check_once(s: Stack, receiver: Receiver, sink: MailSink, emails: list[str],
                      acked: list[int], tag: str) -> None:
    assert len(acked) == EVENTS
    events = await db_rows(s, "SELECT e.id, e.processed_at, e.process_error FROM events e "
                            "JOIN event_types t ON t.id = e.event_type_id WHERE t.key = :tag",
                         tag=tag)
    assert sorted(int(e.id) for e in events) == sorted(acked), "an acked event is missing"
    assert all(e.processed_at is not None and e.process_error is None for e in events)
    runs = await db_rows(s, "SELECT event_id, status FROM workflow_runs")
    assert Counter(int(r.event_id) for r in runs) == Counter(acked), "one run per event"
    assert {r.status for r in runs} == {"completed"}
    steps = await db_rows(s, "SELECT run_id, count(*) FROM workflow_steps GROUP BY run_id")
    assert len(steps) == EVENTS and {int(n) for _r, n in steps} == {2}
    # Repeats (a call or letter made again after a kill) carry the key of the first.
    expected = {str(r[0]) for r in await db_rows(
        s, "SELECT message_id FROM workflow_messages WHERE channel = 'webhook'")}
    called = Counter(headers["idempotency-key"] for headers, _ in receiver.calls)
    assert set(called) == expected and len(expected) == EVENTS
    letters = _ids_by_recipient(sink, emails)
    assert set(letters) == set(emails)
    assert all(len(ids) == 1 for ids in letters.values()), "a repeat carried a new Message-ID"
