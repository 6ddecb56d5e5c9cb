"""The engine's side of a block step: its dependencies (``EngineDeps``) and the runtime of
database blocks (``EngineRuntime``), which run inside the transaction that records their
step, so their writes commit with the step record or not at all. External blocks (email,
webhook) run before it, a batch of them side by side (``batchruntime``); ``stepbatch``
runs a batch of due steps of both kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.config import Settings
from server.consent.unsubscribed import unsubscribed_among
from server.db.models import utcnow
from server.ingest.accept import Acceptance
from server.mail import SmtpConfig
from server.mail.compose import Letter
from server.mail.pool import SmtpPool
from server.templating.pool import RenderPool
from server.workflows import contacts, runs
from server.workflows.launch import insert_event
from server.workflows.runtime import ContactInfo, Delivery, RunView, stored_template
from server.workflows.segments import in_segment


@dataclass(slots=True)
class EngineDeps:
    engine: AsyncEngine
    settings: Settings
    smtp: SmtpConfig | None
    http: httpx.AsyncClient
    worker: str
    renderer: RenderPool
    # The ingest pipeline's needs, for the events Launch event blocks write.
    acceptance: Acceptance
    # SMTP connections kept open for the letters of every batch.
    mail: SmtpPool


class EngineRuntime:
    """``BlockRuntime`` of a database block, on the step transaction's connection."""

    def __init__(self, deps: EngineDeps, run: runs.RunRow, conn: AsyncConnection) -> None:
        self._d = deps
        self._run = run
        self._conn = conn
        self.sender = deps.settings.mail_from
        self.renderer = deps.renderer
        self.launched: list[int] = []
        # Contacts its contact blocks wrote: their membership is re-evaluated before the
        # step transaction commits (``stepbatch``).
        self.written: list[int] = []

    def now(self) -> datetime:
        return utcnow()

    async def contact(self, run: RunView) -> ContactInfo | None:
        return await contacts.contact_info(self._conn, account_id=run.account_id,
                                           contact_id=run.contact_id)

    async def contact_by_email(self, run: RunView, email: str) -> ContactInfo | None:
        return await contacts.contact_by_email(self._conn, account_id=run.account_id,
                                               email=email)

    async def address_listed(self, run: RunView, email: str) -> bool:
        return bool(await unsubscribed_among(self._conn, account_id=run.account_id,
                                             emails=[email]))

    async def fact(self, run: RunView, kind: str, arg: Any) -> bool:
        if kind == "eventOccurred":
            return await runs.event_since(self._conn, self._run, (str(arg),)) is not None
        if kind == "inSegment":
            return await in_segment(self._conn, account_id=run.account_id, segment_id=int(arg),
                                    contact_id=run.contact_id)
        return (await self.contact(run) is not None) == bool(arg)

    async def template(self, run: RunView, template_id: int) -> tuple[str, str, str]:
        return await stored_template(self._conn, account_id=run.account_id,
                                     template_id=template_id)

    async def deliver_email(self, run: RunView, block: dict[str, Any], letter: Letter,
                            contact_id: int | None, refused: str | None) -> Delivery:
        raise RuntimeError("external blocks run before the step transaction (batchruntime)")

    async def post_webhook(self, run: RunView, block: dict[str, Any], url: str,
                           payload: dict[str, Any], key: str) -> Delivery:
        raise RuntimeError("external blocks run before the step transaction (batchruntime)")

    async def write_contact(self, run: RunView, *, create: bool, form: dict[str, Any]
                            ) -> int | None:
        contact_id = await contacts.write_contact(self._conn, account_id=run.account_id,
                                                  create=create, form=form)
        if contact_id is not None:
            self.written.append(contact_id)
        return contact_id

    async def launch_event(self, run: RunView, *, event_type_key: str, key_value: str,
                           params: list[dict[str, Any]]) -> int:
        event_id = await insert_event(self._conn, account_id=run.account_id,
                                      event_type_key=event_type_key, key_value=key_value,
                                      params=params, using=self._d.acceptance)
        self.launched.append(event_id)
        return event_id
