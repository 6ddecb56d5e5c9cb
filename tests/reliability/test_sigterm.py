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
    server's port closing under the gateway), all acknowledged events are stored once,
    and every process exits within the bound (the server 0, the gateway 0 or by the
    SIGTERM uvicorn raises again after its graceful stop)."""
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
    # uvicorn ends a gracefully stopped gateway by raising the signal again (-15).
    assert codes[0] == 0 and codes[1] in (0, -signal.SIGTERM)
    assert c.stored == len(ids) == c.distinct_keys
    assert len(ids) >= 50
    assert in_flight, "no call was in flight at SIGTERM"
    # gRPC calls the server had taken all finish (it keeps its port DRAIN_SECONDS after
    # SIGTERM, then gives calls their grace); an HTTP request racing uvicorn's close of its
    # keep-alive connection may find the connection closed (never read, never stored).
    assert set(outcomes) <= {"200", "OK", "ReadError", "RemoteProtocolError"}, outcomes
