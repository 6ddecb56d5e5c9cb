"""Workflow steps due together are executed in batches (docs/workers.md, "Steps"): a burst
of letters is recorded together and leaves over a few kept SMTP connections, and a step
that keeps failing is retried on its own while the rest of its batch goes on."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from server.mail.sink import MailSink
from tests.support import Stack
from tests.workflows.conftest import (
    create_template,
    create_workflow,
    eventually,
    runs_of,
    unique_key,
)
from tests.workflows.test_webhook import Receiver
from tests.workflows.test_workers import _ids_by_recipient
from workers.settings import build_worker


async def _post(s: Stack, tag: str, emails: list[str]) -> None:
    async def one(i: int, email: str) -> None:
        r = await s.post_event({"eventTypeKey": tag, "keyValue": email, "params": [
            {"name": "email", "value": email}, {"name": "n", "value": i}]})
        assert r.status_code == 200, r.text

    await asyncio.gather(*(one(i, e) for i, e in enumerate(emails)))


async def _burst(s: Stack, tag: str, block: dict[str, Any], n: int) -> tuple[int, list[str]]:
    """A workflow of ``block`` alone, then ``n`` events of it at once: its id, the emails."""
    wid = await create_workflow(s, {"name": tag, "active": True, "trigger": {"eventTypeKey": tag},
                                    "start": block["id"], "blocks": [block]})
    emails = [f"{tag}-{i}@test.local" for i in range(n)]
    await _post(s, tag, emails)
    return wid, emails


async def _all_completed(s: Stack, workflow_id: int, n: int) -> bool:
    runs = await runs_of(s, workflow_id)
    return len(runs) == n and all(r["status"] == "completed" for r in runs)


async def _until_completed(s: Stack, workflow_id: int, n: int, *, timeout: float = 30) -> None:
    """Until the workflow's ``n`` runs completed; if not, fail with where they stand."""
    try:
        await eventually(lambda: _all_completed(s, workflow_id, n), timeout=timeout)
    except AssertionError:
        async with s.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT status, current_block, claimed_by IS NOT NULL AS claimed, error, "
                "count(*) FROM workflow_runs WHERE workflow_id = :w "
                "GROUP BY status, current_block, claimed_by IS NOT NULL, error"),
                {"w": workflow_id})).all()
            events = (await conn.execute(text(
                "SELECT count(*), count(processed_at) FROM events e JOIN event_types t "
                "ON t.id = e.event_type_id WHERE t.key = (SELECT event_type_key FROM workflows "
                "WHERE id = :w)"), {"w": workflow_id})).one()
        raise AssertionError(f"{n} runs not completed within {timeout:.0f} s; runs by "
                             f"(status, block, claimed, error): {[tuple(r) for r in rows]}; "
                             f"trigger events stored/processed: {tuple(events)}; the step "
                             f"pumps' tasks now:\n{_step_tasks()}") from None


def _step_tasks() -> str:
    """The stacks of this loop's step-pump and render tasks: where a claimed batch waits."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        what = f"{task.get_name()} ({getattr(task.get_coro(), '__qualname__', '?')})"
        if "step" in what.lower() or "render" in what.lower():
            out.write(f"--- {what}\n")
            task.print_stack(limit=12, file=out)
    return out.getvalue() or "(none)"


async def test_a_burst_of_letters_is_batched_over_kept_connections(
        wf: Stack, sink: MailSink) -> None:
    """60 letters due together: all sent once, over at most 4 SMTP connections (not one
    each), their steps recorded by a few transactions (shared finish times)."""
    tag = unique_key("burst").replace("-", "_")
    tid = await create_template(wf, name=tag, subject="Hi $!data.get('n')",
                                html="<p>Letter $!data.get('n')</p>", text="Letter")
    wid, emails = await _burst(wf, tag, {"id": "mail", "type": "email", "templateId": tid}, 60)
    await _until_completed(wf, wid, 60)
    seen = _ids_by_recipient(sink, emails)
    assert set(seen) == set(emails) and all(len(ids) == 1 for ids in seen.values())
    peers = {m.peer for m in sink.received if set(m.rcpt_tos) & set(emails)}
    assert None not in peers and 1 <= len(peers) <= 4, peers
    async with wf.engine.connect() as conn:
        finished = (await conn.execute(text(
            "SELECT count(DISTINCT s.finished_at) FROM workflow_steps s "
            "JOIN workflow_runs r ON r.id = s.run_id WHERE r.workflow_id = :w"),
            {"w": wid})).scalar_one()
    assert finished < 30, f"{finished} step transactions for 60 letters: not batched"


async def test_a_new_runs_first_step_is_handed_to_the_worker_that_started_it(
        bare: Stack, sink: MailSink) -> None:
    """A worker whose step pump has no claiming loop still sends the letters of the runs its
    event batch started: their first steps are claimed in that batch's transaction and
    handed to its step pump after the commit, each sent once, no claim left behind."""
    tag = unique_key("handoff").replace("-", "_")
    tid = await create_template(bare, name=tag, subject="Hi $!data.get('n')",
                                html="<p>Letter $!data.get('n')</p>", text="Letter")
    wid = await create_workflow(bare, {
        "name": tag, "active": True, "trigger": {"eventTypeKey": tag}, "start": "mail",
        "blocks": [{"id": "mail", "type": "email", "templateId": tid, "to": "${email}"}]})
    emails = [f"{tag}-{i}@test.local" for i in range(5)]
    await _post(bare, tag, emails)  # stored before the worker starts: one batch, one hand-off
    worker = build_worker(bare.settings, poll_delay=0.05, step_loops=0)
    bare.worker = worker
    bare._tasks.append(asyncio.create_task(worker.main()))
    await _until_completed(bare, wid, 5)
    seen = _ids_by_recipient(sink, emails)
    assert set(seen) == set(emails) and all(len(ids) == 1 for ids in seen.values())
    async with bare.engine.connect() as conn:
        claimed = (await conn.execute(text(
            "SELECT count(*) FROM workflow_runs WHERE workflow_id = :w "
            "AND claimed_by IS NOT NULL"), {"w": wid})).scalar_one()
    assert claimed == 0


class Picky(Receiver):
    """Answers 503 to the call for run ``n == bad`` until ``healed``, 204 to every other."""

    def __init__(self, bad: int) -> None:
        super().__init__(failures=0)
        self.bad, self.healed = bad, False

    async def hook(self, request: Request) -> Response:
        body: Any = await request.json()
        self.calls.append((dict(request.headers), body))
        if body["params"].get("n") == self.bad and not self.healed:
            return Response(status_code=503)
        return Response(status_code=204)


async def test_a_failing_step_is_retried_alone_without_holding_its_batch(wf: Stack) -> None:
    """20 webhook steps due together, one of them answered 503: the other 19 runs complete
    while that one waits to retry (its error says why); once the endpoint heals it
    completes too, every attempt with the same Idempotency-Key."""
    receiver = Picky(bad=7)
    server, task, url = await receiver.start()
    try:
        tag = unique_key("picky").replace("-", "_")
        wid, _emails = await _burst(wf, tag, {"id": "call", "type": "webhook", "url": url}, 20)

        async def others_done() -> Any:
            runs = await runs_of(wf, wid)
            done = [r for r in runs if r["status"] == "completed"]
            waiting = [r for r in runs if r["status"] == "running"]
            return len(done) == 19 and len(waiting) == 1 and waiting[0]

        stuck = await eventually(others_done, timeout=30)
        assert "503" in (stuck.get("error") or ""), stuck
        bad_calls = [h for h, b in receiver.calls if b["params"].get("n") == 7]
        assert bad_calls, "the failing step was never tried"
        receiver.healed = True
        await _until_completed(wf, wid, 20)
        keys = {h["idempotency-key"] for h, b in receiver.calls if b["params"].get("n") == 7}
        assert len(keys) == 1 and len([1 for _h, b in receiver.calls
                                       if b["params"].get("n") == 7]) >= 2
    finally:
        server.should_exit = True
        await task
