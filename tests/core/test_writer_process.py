"""``python -m server`` on SQLite: two serving processes, one ingest writer process.

A real server in a subprocess on a fresh SQLite file: events sent over several
connections (so both serving processes take calls) are all committed once, with their
own ids; a message id repeated across processes is stored once; a killed writer process
is replaced, callers get UNAVAILABLE meanwhile and nothing acknowledged is lost; SIGTERM
stops every process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from eventflow_client import AsyncClient, UnavailableError
from server.procs import terminate
from tests.support import Backends, free_port

KEY = "writer-process-test-key"


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    kids: list[str] = []
    # A child belongs to the thread that started it (the watcher restarts the writer).
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += (task / "children").read_text().split()
        except OSError:
            continue
    for k in kids:
        out.append(int(k))
        out += _descendants(int(k))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _writer_pid(server_pid: int) -> int | None:
    for pid in _descendants(server_pid):
        if "server.ingest.writer.process" in _cmdline(pid):
            return pid
    return None


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, db: Path, redis_url: str,
                 prefix: str) -> None:
        self.proc, self.port, self.db = proc, port, db
        self.redis_url, self.prefix = redis_url, prefix
        self.target = f"127.0.0.1:{port}"

    def stored(self) -> dict[int, str]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            return dict(conn.execute("SELECT id, key_value FROM events"))


@pytest.fixture
def server(tmp_path: Path, backends: Backends) -> Iterator[Server]:
    port = free_port()
    db = tmp_path / "eventflow.db"
    env = dict(os.environ, EVENTFLOW_DATA_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{db}",
               REDIS_URL=backends.redis_url, EVENTFLOW_REDIS_PREFIX=backends.prefix + "wp:",
               EVENTFLOW_API_KEY=KEY, EVENTFLOW_GRPC_ADDR=f"127.0.0.1:{port}",
               EVENTFLOW_SERVER_PROCESSES="2", EVENTFLOW_RATE_LIMIT="0",
               EVENTFLOW_LOG_LEVEL="WARNING")
    env.pop("EVENTFLOW_INGEST_WRITER", None)
    env.pop("EVENTFLOW_INGEST_WRITER_SOCKET", None)
    proc = subprocess.Popen([sys.executable, "-m", "server"], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the server exited at start"
            try:
                import socket

                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        yield Server(proc, port, db, backends.redis_url, backends.prefix + "wp:")
    finally:
        terminate(proc, timeout=30)


async def _clients(target: str, n: int) -> list[AsyncClient]:
    # A channel option of its own per client keeps gRPC from sharing one connection.
    clients = [AsyncClient(target, api_key=KEY, channel=grpc.aio.insecure_channel(
        target, options=[("grpc.use_local_subchannel_pool", 1)])) for _ in range(n)]
    for c in clients:
        await c.__aenter__()
    return clients


async def test_serving_processes_share_one_writer(server: Server) -> None:
    writer = _writer_pid(server.proc.pid)
    assert writer is not None, "no ingest writer process under python -m server"
    clients = await _clients(server.target, 4)
    try:
        ids = await asyncio.gather(*(
            clients[i % 4].generate_event("wp", key_value=f"k{i}") for i in range(200)))
        # The same message id sent through different connections at once.
        repeats = await asyncio.gather(*(
            clients[j].generate_event("wp", key_value=f"m{n}", message_id=f"mid-{n}")
            for n in range(10) for j in range(4)))
    finally:
        for c in clients:
            await c.__aexit__(None, None, None)
    assert len(set(ids)) == 200
    stored = server.stored()
    for i, event_id in enumerate(ids):
        assert stored[event_id] == f"k{i}"
    for n in range(10):
        group = set(repeats[n * 4:(n + 1) * 4])
        assert len(group) == 1, group
        assert stored[group.pop()] == f"m{n}"
    assert len(stored) == 210
    # The writer process woke the workers for the events' account itself (the serving
    # processes' sweeper waits 10 s before it looks, so this is not the sweeper's doing).
    import redis

    with sqlite3.connect(f"file:{server.db}?mode=ro", uri=True) as conn:
        accounts = {str(a) for (a,) in conn.execute("SELECT DISTINCT account_id FROM events")}
    client = redis.Redis.from_url(server.redis_url)
    try:
        key = f"{server.prefix}events:wake"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and client.zcard(key) < len(accounts):
            await asyncio.sleep(0.05)
        woken = {m.decode() for m in client.zrange(key, 0, -1)}
    finally:
        client.close()
    assert len(accounts) == 1 and woken == accounts


async def test_killed_writer_is_replaced_and_nothing_acked_is_lost(server: Server) -> None:
    writer = _writer_pid(server.proc.pid)
    assert writer is not None
    acked: dict[int, str] = {}
    failures: list[str] = []
    (client,) = await _clients(server.target, 1)
    try:
        for i in range(20):
            acked[await client.generate_event("kill", key_value=f"before{i}")] = f"before{i}"
        os.kill(writer, signal.SIGKILL)
        deadline = time.monotonic() + 20
        i = 0
        while time.monotonic() < deadline:
            i += 1
            try:
                acked[await client.generate_event("kill", key_value=f"after{i}")] = f"after{i}"
            except UnavailableError as exc:
                failures.append(str(exc))
                await asyncio.sleep(0.05)
                continue
            if _writer_pid(server.proc.pid) not in (None, writer) and len(acked) >= 40:
                break
    finally:
        await client.__aexit__(None, None, None)
    assert _writer_pid(server.proc.pid) not in (None, writer), "the writer was not restarted"
    assert len(acked) >= 40, failures[-3:]
    assert all("writer" in f for f in failures), failures[:3]
    stored = server.stored()
    for event_id, key in acked.items():
        assert stored.get(event_id) == key


def test_sigterm_stops_the_writer_too(server: Server) -> None:
    writer = _writer_pid(server.proc.pid)
    assert writer is not None
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{writer}").exists():
        time.sleep(0.05)
    status = Path(f"/proc/{writer}/status")
    assert not status.exists() or "zombie" in status.read_text()


async def test_writer_threads_of_two_servers_take_turns(tmp_path: Path, backends: Backends
                                                        ) -> None:
    """EVENTFLOW_INGEST_WRITER=inline: two in-process servers on one SQLite file write
    concurrently through their own writer threads (ordered by the ingest flock)."""
    from server.config import normalise_database_url
    from tests.support import start_stack

    db_url = normalise_database_url(f"sqlite:///{tmp_path / 'shared.db'}")
    shared = Backends(database_url=db_url, redis_url=backends.redis_url,
                      prefix=backends.prefix + "thr:")
    first = await start_stack(shared, tmp_path / "a", worker=False, ingest_writer="inline",
                              sqlite_synchronous="FULL")
    second = await start_stack(shared, tmp_path / "b", worker=False, ingest_writer="inline",
                               sqlite_synchronous="FULL")
    try:
        assert first.writer_process is None and second.writer_process is None
        async with AsyncClient(first.grpc_target, api_key=first.api_key) as a, \
                AsyncClient(second.grpc_target, api_key=first.api_key) as b:
            ids = await asyncio.gather(*(
                (a if i % 2 else b).generate_event("thr", key_value=f"t{i}")
                for i in range(300)))
        assert len(set(ids)) == 300
        assert Path(f"{tmp_path / 'shared.db'}-ingest.lock").exists()
        assert await first.count_events() == 300
    finally:
        await second.stop()
        await first.stop()


async def test_writer_waits_out_another_writers_lock(server: Server) -> None:
    """Another connection holds SQLite's write lock: the writer process waits, commits
    after it is released, answers, and stays the same process."""
    writer = _writer_pid(server.proc.pid)
    (client,) = await _clients(server.target, 1)
    try:
        await client.generate_event("lock", key_value="warm")
        blocker = sqlite3.connect(server.db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            sent = asyncio.ensure_future(client.generate_event("lock", key_value="held"))
            await asyncio.sleep(0.4)
            assert not sent.done(), "answered while the database was locked"
        finally:
            blocker.execute("COMMIT")
            blocker.close()
        event_id = await asyncio.wait_for(sent, 10)
    finally:
        await client.__aexit__(None, None, None)
    assert server.stored()[event_id] == "held"
    assert _writer_pid(server.proc.pid) == writer
