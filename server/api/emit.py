"""Events the server emits on a caller's behalf (a subscription, an order, an import's new
contact) enter the store the way every event does: ``server.ingest.accept``, then the
writer's group commit."""

from __future__ import annotations

from collections.abc import Sequence

from server.api.events import IngestDeps
from server.contacts.contact_json import ContactJsonCheck
from server.ingest.accept import Acceptance, accept
from server.ingest.model import EventInput, ValidEvent

__all__ = ["Emitter"]


class Emitter:
    """One per servicer: the acceptance rules of this process and its writer."""

    def __init__(self, deps: IngestDeps) -> None:
        self._deps = deps
        self.acceptance = Acceptance(max_bytes=deps.settings.max_event_bytes,
                                     contact_json=ContactJsonCheck(deps.engine),
                                     event_types=deps.event_types)

    async def check(self, event: EventInput, *, account_id: int) -> ValidEvent:
        """Accept ``event`` without writing it (to refuse a call before it changes anything)."""
        return await accept(event, account_id=account_id, using=self.acceptance)

    async def emit(self, events: Sequence[EventInput], *, account_id: int) -> list[int]:
        """Accept and commit ``events``; their ids in order. A refused event raises the
        acceptance error: the emitter built it, so refusal is a bug or a limit hit."""
        valid = [await self.check(e, account_id=account_id) for e in events]
        if not valid:
            return []
        written = await self._deps.writer.write(valid)
        return [w.event_id for w in written]
