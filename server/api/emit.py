"""Events that the server emits on a caller's behalf (a subscription, an order) enter the
store the way every event does: the acceptance rules, then the writer's group commit."""

from __future__ import annotations

from collections.abc import Sequence

from server.api.events import IngestDeps
from server.ingest.model import EventInput
from server.ingest.validation import validate_event

__all__ = ["emit_events"]


async def emit_events(deps: IngestDeps, *, account_id: int, events: Sequence[EventInput]
                      ) -> list[int]:
    """Accept and commit ``events``; their ids in order. A refused event raises the
    acceptance error: the emitter built it, so refusal is a bug or a limit the caller hit."""
    valid = [validate_event(e, account_id=account_id, max_bytes=deps.settings.max_event_bytes)
             for e in events]
    if not valid:
        return []
    written = await deps.writer.write(valid)
    return [w.event_id for w in written]
