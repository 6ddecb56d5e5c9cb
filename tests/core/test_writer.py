"""The ingest writer's parts: the local group commit hands on exactly the new events, the
writer process takes its settings from its parent (never the environment), and the
socket frames survive being cut anywhere."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from server.accounts import ensure_default_account
from server.config import Settings
from server.db.engine import create_engine, migrate_async
from server.db.models import utcnow
from server.ingest.model import ValidEvent, WriteResult
from server.ingest.writer.frames import (
    MAX_FRAME,
    FrameBuffer,
    decode_answer,
    decode_batch,
    encode_answer,
    encode_batch,
    encode_refusal,
)
from server.ingest.writer.group import local_writer, remote_writer
from server.ingest.writer.supervisor import WriterProcess
from tests.support import Backends, private_backends


@pytest.fixture
async def fresh(tmp_path: Path, backends: Backends) -> AsyncIterator[tuple[Settings, int]]:
    """Settings on a database of their own (SQLite or PostgreSQL) and its account id."""
    own = private_backends(backends, tmp_path)
    settings = Settings(data_dir=tmp_path, database_url=own.database_url,
                        redis_url=own.redis_url, redis_prefix=own.prefix,
                        sqlite_synchronous="NORMAL")
    await migrate_async(settings)
    engine = create_engine(settings)
    try:
        account = (await ensure_default_account(engine, settings=settings)).account_id
    finally:
        await engine.dispose()
    yield settings, account
    own.close()


def _event(account: int, key: str, *, message_id: str | None = None,
           past: bool = False) -> ValidEvent:
    body = f'{{"eventTypeKey":"w","keyValue":"{key}","params":[]}}'
    return ValidEvent(account_id=account, event_type_key="w", key_value=key, body=body,
                      message_id=message_id,
                      occurred=utcnow() - timedelta(days=1) if past else None)


async def _stored(settings: Settings) -> dict[int, str]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT id, key_value FROM events"))
            return {int(i): str(k) for i, k in rows}
    finally:
        await engine.dispose()


async def test_local_writer_hands_on_new_events_only(fresh: tuple[Settings, int]) -> None:
    """on_commit gets the accounts of new events (the workers to wake), past events too
    (the workers link them and count them for segments): a commit of only a repeated
    messageId wakes nobody."""
    settings, account = fresh
    handed: list[list[int]] = []

    async def on_commit(accounts: list[int]) -> None:
        handed.append(accounts)

    writer = local_writer(settings, on_commit=on_commit)
    await writer.start()
    try:
        first, again = await asyncio.gather(
            writer.write([_event(account, "a", message_id="m1")]),
            writer.write([_event(account, "b", message_id="m1")]))
        quiet = await writer.write([_event(account, "f", message_id="m1")])
        past = await writer.write([_event(account, "c", past=True)])
        later = await writer.write([_event(account, "d", message_id="m1"),
                                    _event(account, "e")])
    finally:
        await writer.stop()
    assert again == [WriteResult(first[0].event_id, duplicate=True)]
    assert quiet == [WriteResult(first[0].event_id, duplicate=True)]
    assert later[0] == WriteResult(first[0].event_id, duplicate=True)
    assert handed == [[account], [account], [account]]
    assert await _stored(settings) == {first[0].event_id: "a", past[0].event_id: "c",
                                       later[1].event_id: "e"}


async def test_writer_process_takes_settings_from_its_parent(
        fresh: tuple[Settings, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment names another database and an invalid setting: the writer process
    ignores it and commits to the database its parent's settings name."""
    settings, account = fresh
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere' / 'not.db'}")
    monkeypatch.setenv("EVENTFLOW_SQLITE_SYNCHRONOUS", "NOT-A-MODE")
    process = WriterProcess(settings)
    await asyncio.to_thread(process.start)
    writer = remote_writer(process.socket_path)
    await writer.start()
    try:
        (result,) = await writer.write([_event(account, "from-parent")])
    finally:
        await writer.stop()
        await asyncio.to_thread(process.stop)
    assert (await _stored(settings))[result.event_id] == "from-parent"
    assert not (tmp_path / "elsewhere").exists()


def test_frames_survive_any_cut() -> None:
    """Batches and answers fed a byte at a time come out whole and equal; an over-size
    frame header is refused."""
    events = [_event(7, "k", message_id="m"), _event(7, "p", past=True)]
    stream = encode_batch(events) + encode_answer([WriteResult(5), WriteResult(6, True)]) + \
        encode_refusal("busy")
    buf = FrameBuffer()
    payloads = [p for i in range(len(stream)) for p in buf.feed(stream[i:i + 1])]
    assert len(payloads) == 3
    decoded = decode_batch(payloads[0])
    assert [(e.key_value, e.message_id) for e in decoded] == [("k", "m"), ("p", None)]
    assert decoded[1].occurred == events[1].occurred
    assert decode_answer(payloads[1]) == [WriteResult(5), WriteResult(6, True)]
    assert decode_answer(payloads[2]) == "busy"
    with pytest.raises(ValueError, match="frame of"):
        FrameBuffer().feed((MAX_FRAME + 1).to_bytes(4, "big"))


ORPHANING_PARENT = """
import sys, time
from server.config import Settings
from server.ingest.writer.supervisor import WriterProcess
writer = WriterProcess(Settings.from_json(sys.stdin.buffer.readline()))
writer.start()
print(writer.pid, flush=True)
time.sleep(600)
"""


def test_orphaned_writer_process_exits(fresh: tuple[Settings, int]) -> None:
    """A server killed without stopping its writer process (SIGKILL) leaves no writer
    behind holding the socket and the terminal's pipes: it notices and exits."""
    settings, _account = fresh
    parent = subprocess.Popen([sys.executable, "-c", ORPHANING_PARENT], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    try:
        assert parent.stdin is not None and parent.stdout is not None
        parent.stdin.write(settings.to_json() + b"\n")
        parent.stdin.flush()
        writer_pid = int(parent.stdout.readline())
        assert Path(f"/proc/{writer_pid}").exists()
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _running(writer_pid):
            time.sleep(0.1)
        assert not _running(writer_pid), "the orphaned writer process is still running"
    finally:
        parent.kill()
        parent.wait()


def _running(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
