"""SIGTERM under load drains: calls in flight finish, every acknowledged event is stored,
and the server (its serving processes and the ingest writer) and the gateway exit within a
bound."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.outage import Tally, counts, descendants, load
from tests.reliability.procs import Procs, running
from tests.support import Backends, private_backends

# Seconds from SIGTERM to every process gone: the gateway's 5 s and the server's 5 s of
# grace, and a loaded machine.
EXIT_BOUND = 20.0


@pytest.fixture
def deployment(backends: Backends, tmp_path: Path) -> Iterator[Procs]:
    own = private_backends(backends, tmp_path)
    try:
        with running(own, tmp_path / "data", EVENTFLOW_RATE_LIMIT="100000") as procs:
            yield procs
    finally:
        own.close()


async def _gone(pids: list[int], timeout: float) -> float:
    started = time.monotonic()
    while any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in pids):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"still running {timeout:.0f} s after SIGTERM: "
                                 f"{[p for p in pids if _alive(p)]}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


async def test_sigterm_drains_and_loses_nothing(deployment: Procs) -> None:
    """HTTP and gRPC load, then SIGTERM to the server and the gateway at once: every call
    that was in flight is answered 200 / OK (before: some were 503 / UNAVAILABLE, the
    server's port closing under the gateway; an HTTP request racing the close of its
    keep-alive connection was reset), all acknowledged events are stored once, and every
    process exits 0 within the bound (the gateway was -15: uvicorn raised the signal again
    after its graceful stop)."""
    procs = deployment
    assert procs.server is not None and procs.gateway is not None
    pids = descendants(procs.server.pid) + [procs.gateway.pid]
    tally = Tally()
    stop = asyncio.Event()
    background = asyncio.create_task(load(procs, tally, stop, callers=6, record=True))
    await asyncio.sleep(3.0)
    sent_at = time.monotonic()
    procs.server.send_signal(signal.SIGTERM)
    procs.gateway.send_signal(signal.SIGTERM)
    exit_seconds = await _gone(pids, EXIT_BOUND)
    stop.set()
    await background
    codes = (procs.server.wait(5), procs.gateway.wait(5))
    in_flight = [c for c in tally.calls if c.started < sent_at < c.ended]
    ids = sorted(tally.acked)
    c = await counts(procs.settings, ids)
    outcomes: dict[str, int] = {}
    for call in in_flight:
        outcomes[call.outcome] = outcomes.get(call.outcome, 0) + 1
    print(f"\nSIGTERM under load: sent {tally.sent}, acked {len(ids)}, stored {c.stored}, "
          f"{len(in_flight)} in flight at SIGTERM: {outcomes}; all {len(pids)} processes "
          f"gone {exit_seconds:.2f} s after SIGTERM, exit codes {codes}; errors "
          f"{sorted(set(tally.errors))}")
    assert codes == (0, 0)
    assert c.stored == len(ids) == c.distinct_keys
    assert len(ids) >= 50
    assert in_flight, "no call was in flight at SIGTERM"
    # gRPC calls the server had taken all finish (it keeps its port DRAIN_SECONDS after
    # SIGTERM, then gives calls their grace); HTTP requests too: while the gateway drains
    # each answer closes its connection, and an idle one is closed only after a moment,
    # so a request already written to it is answered (server.gateway.drain).
    assert set(outcomes) <= {"200", "OK"}, outcomes


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> tuple[int, bool]:
    """Sends ``request`` on an open connection: (status, whether the answer closes it);
    status 0 when the connection ended without an answer."""
    writer.write(request)
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    except (asyncio.IncompleteReadError, ConnectionError):
        return 0, True
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), headers.get("connection") == "close"


async def test_a_request_on_an_idle_keep_alive_connection_at_sigterm_is_answered(
        deployment: Procs) -> None:
    """60 keep-alive connections, idle after one request each; SIGTERM to the gateway, then
    one request on each, 0 to 300 ms after the signal: every one is answered 200 with
    ``Connection: close`` (before, uvicorn closed idle connections within 0.1 s of the
    signal and the requests sent after were lost), and the gateway exits 0."""
    procs = deployment
    assert procs.gateway is not None
    host, port = procs.http_url.removeprefix("http://").rsplit(":", 1)
    request = (f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").encode()
    conns = [await asyncio.open_connection(host, int(port)) for _ in range(60)]
    for reader, writer in conns:
        assert await _exchange(reader, writer, request) == (200, False)
    procs.gateway.send_signal(signal.SIGTERM)

    async def later(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                    ) -> tuple[int, bool]:
        await asyncio.sleep(n * 0.005)
        return await _exchange(reader, writer, request)

    answers = await asyncio.gather(*(later(n, r, w) for n, (r, w) in enumerate(conns)))
    for _, writer in conns:
        writer.close()
    code = await asyncio.to_thread(procs.gateway.wait, EXIT_BOUND)
    lost = [n for n, (status, _) in enumerate(answers) if status == 0]
    print(f"\nidle keep-alive connections at SIGTERM: {len(answers) - len(lost)} of "
          f"{len(answers)} answered; lost {lost}; gateway exit code {code}")
    assert answers == [(200, True)] * len(conns), lost
    assert code == 0


async def test_the_servers_processes_end_when_it_is_killed(deployment: Procs) -> None:
    """SIGKILL to the server's parent process (it cannot forward anything): its serving
    processes and the ingest writer stop too (SIGTERM from the kernel, server.parentdeath)
    instead of living on as orphans that keep the port, answering from a writer socket
    nobody serves any more."""
    procs = deployment
    assert procs.server is not None
    children = descendants(procs.server.pid)[1:]
    assert len(children) >= 3, children  # two serving processes and the writer
    procs.server.kill()
    procs.server.wait(5)
    seconds = await _gone(children, EXIT_BOUND)
    print(f"\nSIGKILL of the server's parent: its {len(children)} processes gone "
          f"{seconds:.2f} s later")
