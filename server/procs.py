"""Child processes the same way everywhere: started with their settings on stdin, run at
helper priority where they are batch work, stopped with SIGTERM, a grace, then SIGKILL,
and stopped with their parent when it dies (``server.parentdeath``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from server.config import SETTINGS_ON_STDIN, Settings
from server.parentdeath import PARENT_ENV

# Helper processes (template renders, bulk decoding and validation) yield the CPU to the
# serving processes that wait on them: their work is batch work, the callers' is not.
HELPER_NICENESS = 10


def lower_priority() -> None:
    """Run the calling (helper) process at ``HELPER_NICENESS``."""
    os.nice(HELPER_NICENESS)


def terminate(proc: subprocess.Popen[Any], *, timeout: float = 15.0) -> None:
    """Ask ``proc`` to stop and wait for it; kill it if it is still there after ``timeout``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def terminate_all(procs: list[subprocess.Popen[Any]], *, timeout: float = 15.0) -> None:
    """``terminate`` for several at once: all are asked first, so their graceful stops
    (drains, grace periods) overlap rather than add up."""
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def spawn(module: str, *args: str, settings: Settings) -> subprocess.Popen[bytes]:
    """``python -m module args...`` with ``settings`` handed over on its stdin (the child
    reads them with ``Settings.load``), not through the environment."""
    # The child stops with this process (server.parentdeath): call spawn from a thread
    # that lives as long as the child should.
    proc = subprocess.Popen([sys.executable, "-m", module, *args, SETTINGS_ON_STDIN],
                            stdin=subprocess.PIPE,
                            env={**os.environ, PARENT_ENV: str(os.getpid())})
    assert proc.stdin is not None
    try:
        proc.stdin.write(settings.to_json())
        proc.stdin.close()
    except BrokenPipeError:
        pass  # the child died at once; its exit code tells the caller
    return proc
