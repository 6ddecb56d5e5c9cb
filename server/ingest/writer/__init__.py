"""The ingest writer: group commit of accepted events, answered only after the commit.

What a serving process holds is a ``Writer``; ``server.app`` picks which one, once:

- ``group``: the group-commit loop both writers share, and the two of them:
  ``local_writer`` (this process commits, in a thread of its own, and hands new events to
  ``on_commit``) and ``remote_writer`` (the ingest writer process commits and enqueues).
- ``commit``: one transaction with its retry on a conflicting concurrent write, and the
  ids of the new events to dispatch; used by the local writer and the writer process.
- ``connections``: the synchronous database connection a transaction runs on (SQLite with
  its ingest lock, or a database server).
- ``frames``: the socket format between serving processes and the writer process.
- ``client``: a serving process's connection to the writer process.
- ``process``: the writer process itself (``python -m server.ingest.writer.process``),
  with ``enqueue``, its thread that hands committed events to the workers.
- ``supervisor``: starts the writer process for ``python -m server`` and restarts it.

The modules import downward only: ``group`` uses ``client`` and ``commit``, ``process``
uses ``commit``, ``frames`` and ``enqueue``; nothing imports ``group`` or ``process``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from server.ingest.model import ValidEvent, WriteResult

__all__ = ["Writer"]


class Writer(Protocol):
    """What the servicers write through: ``write`` answers once the events are committed."""

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Finish what is queued, then refuse new writes."""

    async def write(self, events: Sequence[ValidEvent]) -> list[WriteResult]:
        """One result per event, in order; raises ``Unavailable`` when nothing was stored."""
