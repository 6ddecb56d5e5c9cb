"""Starts the ingest writer process for ``python -m server`` and restarts it if it dies.

The writer gets its settings explicitly (JSON on its stdin), never through the
environment; the serving processes find it at ``socket_path``.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from server.config import Settings
from server.ingest.writer.process import MODULE
from server.procs import spawn, terminate

__all__ = ["WriterProcess"]

log = logging.getLogger(__name__)


class WriterProcess:
    """Started and watched by ``python -m server``: restarted if it dies while serving."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._dir = tempfile.mkdtemp(prefix="eventflow-writer-")
        self.socket_path = str(Path(self._dir) / "ingest.sock")
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _spawn(self) -> None:
        self._proc = spawn(MODULE, self.socket_path, settings=self._settings)

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
