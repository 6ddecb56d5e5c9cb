"""Stopping a child process the same way everywhere: SIGTERM, a grace period, then SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any

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
