"""A child process that ends with its parent, however the parent ends.

``procs.spawn`` names the parent in the child's environment (``PARENT_ENV``); the child,
as it reads its settings (``Settings.load``), asks the kernel for SIGTERM when that parent
dies (``PR_SET_PDEATHSIG``), so no serving process, writer or worker outlives a parent
killed with SIGKILL and keeps the port, the queues or a writer socket nobody answers. A
parent already gone by then ends the child at once. Linux only; elsewhere a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "EVENTFLOW_PARENT_PID"
PR_SET_PDEATHSIG = 1


def stop_with_parent() -> None:
    """SIGTERM to this process when the thread that started it ends (its parent's main
    thread: ``procs.spawn`` is called from threads that live as long as their children)."""
    parent = os.environ.pop(PARENT_ENV, None)
    if parent is None or not sys.platform.startswith("linux"):
        return
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != int(parent):
        os.kill(os.getpid(), signal.SIGTERM)  # the parent died before this was set
