"""The ingest writer process: one writer for every serving process of a server.

On SQLite, with a writer thread in each serving process the processes took turns on the
database's one write lock, each transaction small, and each thread had to win its own
process's GIL back from a busy event loop several times while holding the lock. On
PostgreSQL each serving process paid for its own round trips and async driver. Under
``python -m server`` a process of its own does all ingest writes instead: the serving
processes send their group-committed batches over a Unix socket, the writer commits
everything that arrived while its previous transaction ran in one transaction, and answers
each batch with its event ids. Only then do the serving processes answer their callers,
so an acknowledged event is committed, as before. The writer also hands the new events
to the arq workers (one Lua enqueue per transaction, from a thread of its own, after the
answers went out), which takes the Redis round trip off the serving processes' event
loops; the dispatch sweeper of the serving processes still catches whatever that missed.

Frames on the socket are a 4-byte big-endian length and an orjson document: a batch is a
list of ``[account_id, event_type_key, key_value, body, message_id, occurred_us]``; the
answer is ``{"r": [[event_id, duplicate], ...]}`` in the same order, or ``{"e": reason}``
when nothing was stored.

``python -m server.ingest.writerproc SOCKET_PATH`` (started by ``python -m server``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import redis
from sqlalchemy import make_url
from sqlalchemy.exc import IntegrityError

from server.config import Settings
from server.db.models import utcnow
from server.errors import Unavailable
from server.ingest.dispatch import ENQUEUE_LUA, enqueue_args
from server.ingest.model import ValidEvent, WriteResult
from server.ingest.txn import TypeIds
from server.procs import terminate

log = logging.getLogger(__name__)
FRAME = struct.Struct(">I")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
MAX_FRAME = 256 * 1024 * 1024
SOCKET_ENV = "EVENTFLOW_INGEST_WRITER_SOCKET"


def encode_batch(events: Sequence[ValidEvent]) -> bytes:
    payload = orjson.dumps([
        [ev.account_id, ev.event_type_key, ev.key_value, ev.body, ev.message_id,
         None if ev.occurred is None else (ev.occurred - EPOCH) // MICROSECOND]
        for ev in events])
    return FRAME.pack(len(payload)) + payload


def decode_batch(payload: bytes) -> list[ValidEvent]:
    return [ValidEvent(account_id=a, event_type_key=t, key_value=k, body=b, message_id=m,
                       occurred=None if o is None else EPOCH + timedelta(microseconds=o))
            for a, t, k, b, m, o in orjson.loads(payload)]


class WriterClient:
    """A serving process's connection to the writer process (asyncio)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._stream: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._waiting: deque[asyncio.Future[list[WriteResult]]] = deque()

    async def _connect(self) -> asyncio.StreamWriter:
        try:
            reader, stream = await asyncio.open_unix_connection(self._path)
        except OSError as exc:
            raise Unavailable(f"the ingest writer process is not answering at {self._path} "
                              f"({exc.strerror or exc}); nothing was stored, retry") from None
        self._stream = stream
        self._reader_task = asyncio.create_task(self._read(reader, stream),
                                                name="ingest-writer-answers")
        return stream

    async def write(self, events: Sequence[ValidEvent]) -> list[WriteResult]:
        stream = self._stream or await self._connect()
        future: asyncio.Future[list[WriteResult]] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        stream.write(encode_batch(events))
        return await future

    async def _read(self, reader: asyncio.StreamReader, stream: asyncio.StreamWriter) -> None:
        try:
            while True:
                (size,) = FRAME.unpack(await reader.readexactly(FRAME.size))
                answer = orjson.loads(await reader.readexactly(size))
                future = self._waiting.popleft()
                if future.done():
                    continue
                if "e" in answer:
                    future.set_exception(Unavailable(f"{answer['e']}; nothing was stored, retry"))
                else:
                    future.set_result([WriteResult(int(i), bool(d)) for i, d in answer["r"]])
        except (asyncio.IncompleteReadError, OSError, IndexError, orjson.JSONDecodeError):
            pass
        finally:
            if self._stream is stream:
                self._stream = None
            stream.close()
            while self._waiting:
                future = self._waiting.popleft()
                if not future.done():
                    future.set_exception(Unavailable(
                        "the ingest writer process went away during the write; the events "
                        "may or may not be stored: retry with the same messageId so that "
                        "a stored one is not stored twice"))

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
        if self._reader_task is not None:
            try:
                await self._reader_task
            except asyncio.CancelledError:
                pass


# --- the writer process -----------------------------------------------------------------


class _Conn:
    __slots__ = ("buf", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def frames(self) -> list[bytes]:
        out = []
        while len(self.buf) >= FRAME.size:
            (size,) = FRAME.unpack_from(self.buf)
            if size > MAX_FRAME:
                raise ValueError(f"frame of {size} bytes")
            if len(self.buf) < FRAME.size + size:
                break
            out.append(bytes(self.buf[FRAME.size:FRAME.size + size]))
            del self.buf[:FRAME.size + size]
        return out


class Enqueuer:
    """Enqueues process_event jobs for committed events from a thread of its own.

    Everything handed over while one enqueue ran goes out in the next one. When Redis
    fails the ids are dropped with a warning: the events stay unprocessed in the database
    and the sweeper of the serving processes enqueues them (the database is the truth).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # None asks the thread to stop. A SimpleQueue (C) costs the committing thread far
        # less than a Condition, whose Python-level notify showed in the profile.
        self._ids: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self._quiet_until = 0.0
        self._thread = threading.Thread(target=self._run, name="enqueue", daemon=True)
        self._client: Any = None
        self._script: Any = None
        if settings.redis_url:
            self._client = redis.Redis.from_url(settings.redis_url, socket_timeout=5,
                                                socket_connect_timeout=2)
            self._script = self._client.register_script(ENQUEUE_LUA)
            self._thread.start()

    def submit(self, event_ids: list[int]) -> None:
        if self._script is not None and event_ids:
            self._ids.put(event_ids)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._ids.get()
            chunks = [] if first is None else [first]
            stopping = first is None
            while not self._ids.empty():  # everything handed over meanwhile goes together
                chunk = self._ids.get_nowait()
                if chunk is None:
                    stopping = True
                else:
                    chunks.append(chunk)
            if not chunks:
                continue
            ids = [i for chunk in chunks for i in chunk]
            try:
                self._script(keys=[self._settings.queue_name],
                             args=enqueue_args(self._settings, ids))
            except redis.RedisError as exc:
                now = time.monotonic()
                if now >= self._quiet_until:
                    log.warning("enqueue of %d events failed (%s); the sweeper will retry",
                                len(ids), exc)
                    self._quiet_until = now + 10

    def stop(self) -> None:
        """Enqueue what was handed over, then end the thread."""
        if self._thread.is_alive():
            self._ids.put(None)
            self._thread.join(timeout=10)
        if self._client is not None:
            self._client.close()


def _commit(ingest: Any, type_cache: TypeIds, batches: list[list[ValidEvent]]
            ) -> tuple[list[bytes], list[int]]:
    """One transaction for every batch: the answer frame of each batch, in order, and the
    ids of the new events to dispatch."""
    events = [ev for batch in batches for ev in batch]
    reason = "conflicting concurrent writes"
    results: list[WriteResult] | None = None
    for _attempt in range(3):
        try:
            results = ingest.write(events, utcnow())
            break
        except IntegrityError:
            type_cache.clear()  # another writer created the same event type first
        except Exception as exc:  # one batch must never end the writer
            type_cache.clear()
            log.exception("ingest commit failed")
            reason = f"the database did not accept the write ({type(exc).__name__})"
            break
    answers = []
    pos = 0
    for batch in batches:
        if results is None:
            doc: dict[str, Any] = {"e": reason}
        else:
            doc = {"r": [[r.event_id, 1 if r.duplicate else 0]
                         for r in results[pos:pos + len(batch)]]}
        pos += len(batch)
        payload = orjson.dumps(doc)
        answers.append(FRAME.pack(len(payload)) + payload)
    new_ids = [] if results is None else [
        r.event_id for r, ev in zip(results, events) if not r.duplicate and ev.occurred is None]
    return answers, new_ids


def serve(path: str, settings: Settings) -> None:
    from server.ingest.writer import ServerIngest, SqliteIngest

    ingest: SqliteIngest | ServerIngest
    type_cache: TypeIds = {}
    url = make_url(settings.database_url)
    if settings.is_sqlite:
        ingest = SqliteIngest(url.set(drivername="sqlite"), settings, type_cache=type_cache)
    else:
        # psycopg's SQLAlchemy dialect serves synchronous engines from the same URL.
        ingest = ServerIngest(url, type_cache=type_cache)
    enqueuer = Enqueuer(settings)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    # Ctrl-C reaches the whole process group; the serving processes may still be finishing
    # their calls then, so only the parent's SIGTERM, sent after they ended, stops this one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(128)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    conns: dict[int, _Conn] = {}
    log.info("ingest writer listening on %s", path)

    def drop(conn: _Conn) -> None:
        sel.unregister(conn.sock)
        conns.pop(conn.sock.fileno(), None)
        conn.sock.close()

    try:
        while True:
            ready = sel.select(timeout=0.5)
            if not ready and stopping.is_set():
                return
            pending: list[tuple[_Conn, list[ValidEvent]]] = []
            for key, _mask in ready:
                if key.fileobj is listener:
                    sock, _ = listener.accept()
                    conns[sock.fileno()] = _Conn(sock)
                    sel.register(sock, selectors.EVENT_READ)
                    continue
                conn = conns[key.fd]
                try:
                    data = conn.sock.recv(1 << 20)
                except OSError:
                    data = b""
                if not data:
                    drop(conn)
                    continue
                conn.buf += data
                try:
                    pending += [(conn, decode_batch(f)) for f in conn.frames()]
                except (ValueError, TypeError) as exc:
                    log.error("dropping a connection that sent a malformed batch: %s", exc)
                    drop(conn)
            if not pending:
                continue
            answers, new_ids = _commit(ingest, type_cache, [batch for _, batch in pending])
            for (conn, _), answer in zip(pending, answers):
                if conn.sock.fileno() < 0:
                    continue
                try:
                    conn.sock.sendall(answer)
                except OSError:
                    drop(conn)
            enqueuer.submit(new_ids)
    finally:
        for conn in list(conns.values()):
            conn.sock.close()
        listener.close()
        if os.path.exists(path):
            os.unlink(path)
        enqueuer.stop()
        ingest.close()


class WriterProcess:
    """Started and watched by ``python -m server``: restarted if it dies while serving."""

    def __init__(self, settings: Settings) -> None:
        # What the writer reads of its settings, passed explicitly (tests start it too).
        self._env = dict(os.environ, DATABASE_URL=settings.database_url,
                         EVENTFLOW_SQLITE_SYNCHRONOUS=settings.sqlite_synchronous,
                         REDIS_URL=settings.redis_url or "",
                         EVENTFLOW_REDIS_PREFIX=settings.redis_prefix)
        self._dir = tempfile.mkdtemp(prefix="eventflow-writer-")
        self.socket_path = str(Path(self._dir) / "ingest.sock")
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def _spawn(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-m", "server.ingest.writerproc",
                                       self.socket_path], env=self._env)

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise SystemExit(f"the ingest writer process exited with {self._proc.returncode} "
                                 "at start; its log lines above say why")
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    probe.connect(self.socket_path)
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"the ingest writer process did not listen on {self.socket_path} "
                         f"within {timeout:.0f} s")

    def start(self) -> None:
        self._spawn()
        self._wait_ready()
        self._watcher = threading.Thread(target=self._watch, name="writer-watch", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            code = proc.wait()
            if self._stopping.is_set():
                return
            log.error("the ingest writer process exited with %s; starting it again", code)
            time.sleep(0.2)
            if self._stopping.is_set():
                return
            self._spawn()
            try:
                self._wait_ready()
            except SystemExit as exc:
                log.error("%s", exc)

    def stop(self) -> None:
        """After the serving processes ended: let the writer finish and exit."""
        self._stopping.set()
        if self._proc is not None:
            terminate(self._proc)
        shutil.rmtree(self._dir, ignore_errors=True)


def main() -> None:
    from server.logs import setup_logging

    setup_logging()
    path = sys.argv[1]
    try:
        serve(path, Settings.from_env())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
