"""Worker processes: a SIGKILL mid-batch loses no letter and repeats none under a new
Message-ID; two workers share the load."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import defaultdict

from sqlalchemy import text

from server.mail.sink import MailSink
from server.procs import terminate
from tests.support import Stack
from tests.workflows.conftest import create_template, create_workflow, eventually


def spawn_worker(s: Stack, **extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, **extra, DATABASE_URL=s.settings.database_url,
               REDIS_URL=s.settings.redis_url or "", EVENTFLOW_REDIS_PREFIX=s.settings.redis_prefix,
               EVENTFLOW_SMTP_URL=s.settings.smtp_url or "", EVENTFLOW_SWEEP_INTERVAL="0.5",
               EVENTFLOW_DATA_DIR=str(s.settings.data_dir), EVENTFLOW_LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "-m", "tests.workflows.worker_proc"], env=env)


async def _batch(s: Stack, count: int, tag: str) -> list[str]:
    tid = await create_template(s, name=tag, subject="Hi $!data.get('n')",
                                html="<p>Letter $!data.get('n')</p>", text="Letter $!data.get('n')")
    await create_workflow(s, {"name": tag, "active": True, "trigger": {"eventTypeKey": tag},
                              "start": "mail", "blocks": [
                                  {"id": "mail", "type": "email", "templateId": tid,
                                   "to": "${email}"}]})
    emails = [f"{tag}{i}@test.local" for i in range(count)]
    sem = asyncio.Semaphore(20)

    async def post(i: int, email: str) -> None:
        async with sem:
            r = await s.post_event({"eventTypeKey": tag, "keyValue": email, "params": [
                {"name": "email", "value": email}, {"name": "n", "value": i}]})
            assert r.status_code == 200, r.text

    await asyncio.gather(*(post(i, e) for i, e in enumerate(emails)))
    return emails


def _ids_by_recipient(sink: MailSink, emails: list[str]) -> dict[str, set[str]]:
    wanted = set(emails)
    seen: dict[str, set[str]] = defaultdict(set)
    for m in sink.received:
        for rcpt in m.rcpt_tos:
            if rcpt in wanted:
                seen[rcpt].add(str(m.message["Message-ID"]))
    return seen


def _stop(proc: subprocess.Popen[bytes]) -> None:
    terminate(proc, timeout=10)


async def test_sigkill_mid_batch_loses_no_letter(bare: Stack, sink: MailSink) -> None:
    """200 triggered emails, worker SIGKILLed mid-batch and restarted: all delivered once-ish."""
    first = spawn_worker(bare)
    try:
        emails = await _batch(bare, 200, "kill")
        await eventually(lambda: _count(sink, emails, 30), timeout=30, interval=0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
        delivered_at_kill = len(_ids_by_recipient(sink, emails))
        assert delivered_at_kill < 200, "the kill came too late to test anything"
        second = spawn_worker(bare)
        try:
            await eventually(lambda: _count(sink, emails, 200), timeout=60, interval=0.2)
            # The last letters' runs finish right after their delivery is recorded.
            await eventually(lambda: _statuses(bare, {"completed": 200}), timeout=30)
        finally:
            _stop(second)
    finally:
        _stop(first)
    seen = _ids_by_recipient(sink, emails)
    assert set(seen) == set(emails)
    assert all(len(ids) == 1 for ids in seen.values()), "a repeat carried a new Message-ID"
    assert len({next(iter(ids)) for ids in seen.values()}) == 200
    assert await _statuses(bare, {"completed": 200})


async def _statuses(s: Stack, expected: dict[str, int]) -> bool:
    async with s.engine.connect() as conn:
        statuses = (await conn.execute(text(
            "SELECT status, count(*) FROM workflow_runs GROUP BY status"))).all()
    return dict(statuses) == expected


async def test_two_workers_share_the_load(bare: Stack, sink: MailSink) -> None:
    """Two worker processes both execute steps of one burst (claimed 10 at a time)."""
    procs = [spawn_worker(bare), spawn_worker(bare)]
    try:
        emails = await _batch(bare, 120, "pair")
        await eventually(lambda: _count(sink, emails, 120), timeout=60, interval=0.1)
    finally:
        for p in procs:
            _stop(p)
    async with bare.engine.connect() as conn:
        workers = (await conn.execute(text(
            "SELECT worker, count(*) FROM workflow_steps GROUP BY worker"))).all()
    assert len(workers) == 2, workers


async def _count(sink: MailSink, emails: list[str], at_least: int) -> bool:
    return len(_ids_by_recipient(sink, emails)) >= at_least
