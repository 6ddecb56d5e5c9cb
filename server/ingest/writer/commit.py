"""One group-commit transaction with its retry, for the local writer and the writer process.

A conflicting concurrent write (another process stored the same message id or created the
same event type first) is retried: the retry sees the other's committed row. Any other
failure ends the attempt at once; the connection has already dropped itself then.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError

from server.db.errors import describe, outage
from server.db.models import utcnow
from server.errors import Unavailable
from server.ingest.model import ValidEvent, WriteResult
from server.ingest.writer.connections import IngestConnection

__all__ = ["ATTEMPTS", "CommitFailed", "commit", "dispatch_accounts"]

log = logging.getLogger(__name__)
ATTEMPTS = 3


class CommitFailed(Exception):
    """Nothing of the transaction was stored; ``reason`` says why in the caller's words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def unavailable(self) -> Unavailable:
        return Unavailable(f"{self.reason}; nothing was stored: retry in a few seconds")


def commit(conn: IngestConnection, events: list[ValidEvent]) -> list[WriteResult]:
    """Store ``events`` in one transaction; one result per event, in order."""
    for _attempt in range(ATTEMPTS):
        try:
            return conn.write(events, utcnow())
        except IntegrityError:
            conn.type_cache.clear()  # the other writer's event type has another id
        except Exception as exc:  # one batch must never end the writer
            conn.type_cache.clear()
            if outage(exc):  # locked, down, dropped: no traceback, the reason says it
                log.warning("ingest commit failed: %s", describe(exc))
                raise CommitFailed(describe(exc)) from exc
            log.exception("ingest commit failed")
            raise CommitFailed(
                f"the database did not accept the write ({type(exc).__name__})") from exc
    raise CommitFailed("conflicting concurrent writes")


def dispatch_accounts(events: Sequence[ValidEvent], results: Sequence[WriteResult]) -> list[int]:
    """The accounts whose workers should wake: those with new events (past events too: the
    workers link them to their contacts and count them for segments)."""
    return sorted({ev.account_id for r, ev in zip(results, events, strict=True)
                   if not r.duplicate})
