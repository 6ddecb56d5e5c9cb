"""The engine's side of a block step: the database/SMTP/HTTP runtime and ``run_step``, which
runs one step of one run and records it atomically with the run's advance.

Database-only blocks run inside the advance transaction (their writes commit with the step
record or not at all). External blocks run outside it, guarded by ``deliveries``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.config import Settings
from server.consent.unsubscribed import unsubscribed_among
from server.db.models import utcnow
from server.ingest.accept import Acceptance
from server.mail import MailDeferred, SmtpConfig
from server.mail.compose import Letter
from server.messaging.delivery import deliver_letter
from server.templating.pool import RenderPool
from server.workflows import contacts, deliveries, runs, store
from server.workflows.blocks import block_type, execute
from server.workflows.launch import insert_event
from server.workflows.runtime import (
    ContactInfo,
    Delivery,
    RetryLater,
    RunView,
    StepOutcome,
    stored_template,
)


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


@dataclass(slots=True)
class StepResult:
    """``status``: the run's status after the step, ``stale`` or ``retry``."""

    status: str
    next_seq: int | None = None
    wake: datetime | None = None
    launched: list[int] = field(default_factory=list)
    reason: str | None = None


class _StepDeliveryLog:
    """The ``DeliveryLog`` of a workflow step's letter: its ``workflow_messages`` row."""

    def __init__(self, engine: AsyncEngine, run: RunView, plan: deliveries.Planned) -> None:
        self._engine, self._run, self._plan = engine, run, plan

    async def open(self) -> tuple[str, str | None] | None:
        earlier = await deliveries.open_delivery(self._engine, self._run, self._plan)
        return None if earlier is None else (earlier.status, earlier.reason)

    async def close(self, *, status: str, reason: str | None = None) -> None:
        await deliveries.close_delivery(self._engine, self._run, status=status, reason=reason)


class EngineRuntime:
    def __init__(self, deps: EngineDeps, run: runs.RunRow, conn: AsyncConnection | None) -> None:
        self._d = deps
        self._run = run
        self._conn = conn
        self.sender = deps.settings.mail_from
        self.renderer = deps.renderer
        self.launched: list[int] = []

    def now(self) -> datetime:
        return utcnow()

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        if self._conn is not None:
            yield self._conn
        else:
            async with self._d.engine.connect() as conn:
                yield conn

    def _in_txn(self) -> AsyncConnection:
        assert self._conn is not None, "database blocks run inside the step transaction"
        return self._conn

    async def contact(self, run: RunView) -> ContactInfo | None:
        async with self._read() as conn:
            return await contacts.contact_info(conn, account_id=run.account_id,
                                               contact_id=run.contact_id)

    async def contact_by_email(self, run: RunView, email: str) -> ContactInfo | None:
        async with self._read() as conn:
            return await contacts.contact_by_email(conn, account_id=run.account_id, email=email)

    async def address_listed(self, run: RunView, email: str) -> bool:
        async with self._read() as conn:
            return bool(await unsubscribed_among(conn, account_id=run.account_id,
                                                 emails=[email]))

    async def fact(self, run: RunView, kind: str, arg: Any) -> bool:
        if kind == "eventOccurred":
            async with self._read() as conn:
                return await runs.event_since(conn, self._run, (str(arg),)) is not None
        return (await self.contact(run) is not None) == bool(arg)

    async def template(self, run: RunView, template_id: int) -> tuple[str, str, str]:
        async with self._read() as conn:
            return await stored_template(conn, account_id=run.account_id, template_id=template_id)

    async def deliver_email(self, run: RunView, block: dict[str, Any], letter: Letter,
                            contact_id: int | None, refused: str | None) -> Delivery:
        plan = deliveries.Planned(channel="email", block_id=block["id"], contact_id=contact_id,
                                  recipient=letter.to, subject=letter.subject,
                                  key=letter.message_id, refused=refused, html=letter.html,
                                  text=letter.text)
        try:
            status, reason = await deliver_letter(
                log=_StepDeliveryLog(self._d.engine, run, plan), smtp=self._d.smtp,
                letter=letter)
        except MailDeferred as exc:
            raise RetryLater(exc.reason) from None
        return Delivery(status, reason)

    async def post_webhook(self, run: RunView, block: dict[str, Any], url: str,
                           payload: dict[str, Any], key: str) -> Delivery:
        plan = deliveries.Planned(channel="webhook", block_id=block["id"],
                                  contact_id=run.contact_id, recipient=url, subject="", key=key,
                                  text=orjson.dumps(payload).decode())
        earlier = await deliveries.open_delivery(self._d.engine, run, plan)
        if earlier is not None:
            return earlier
        try:
            resp = await self._d.http.post(url, json=payload, headers={"Idempotency-Key": key})
        except httpx.HTTPError as exc:
            reason = f"POST {url} failed: {type(exc).__name__}: {exc}"
            await deliveries.close_delivery(self._d.engine, run, status="queued", reason=reason)
            raise RetryLater(reason) from None
        if not 200 <= resp.status_code < 300:
            reason = f"POST {url} answered HTTP {resp.status_code}"
            await deliveries.close_delivery(self._d.engine, run, status="queued", reason=reason)
            raise RetryLater(reason)
        await deliveries.close_delivery(self._d.engine, run, status="sent")
        return Delivery("sent")

    async def write_contact(self, run: RunView, *, create: bool, form: dict[str, Any]
                            ) -> int | None:
        return await contacts.write_contact(self._in_txn(), account_id=run.account_id,
                                            create=create, form=form)

    async def launch_event(self, run: RunView, *, event_type_key: str, key_value: str,
                           params: list[dict[str, Any]]) -> int:
        event_id = await insert_event(self._in_txn(), account_id=run.account_id,
                                      event_type_key=event_type_key, key_value=key_value,
                                      params=params, using=self._d.acceptance)
        self.launched.append(event_id)
        return event_id


def _result(status: str, seq: int, outcome: StepOutcome, launched: list[int]) -> StepResult:
    active = status in runs.ACTIVE
    return StepResult(status=status, next_seq=seq + 1 if active else None,
                      wake=outcome.wait_until if active else None, launched=launched)


async def _stopped(deps: EngineDeps, run: runs.RunRow, block_type: str) -> StepResult | None:
    """Stop events are checked when a run starts and after every timer."""
    async with deps.engine.connect() as conn:
        d = await store.load_version(conn, workflow_id=run.workflow_id, version=run.version)
        stop_id = await runs.event_since(conn, run, d.stop_event_types)
    if stop_id is None:
        return None
    async with deps.engine.begin() as conn:
        locked = await runs.load_run(conn, run.id, lock=True)
        if locked is None or locked.step_seq != run.step_seq or locked.status not in runs.ACTIVE:
            return StepResult("stale")
        await runs.stop_run(conn, locked, block_type=block_type, reason="stop event",
                            stop_event_id=stop_id, worker=deps.worker)
    return StepResult("stopped")


async def run_step(deps: EngineDeps, *, run_id: int, seq: int, final_try: bool) -> StepResult:
    """Run step ``seq`` of the run unless it already ran; see the module docstring."""
    async with deps.engine.connect() as conn:
        run = await runs.load_run(conn, run_id)
        if run is None or run.step_seq != seq or run.status not in runs.ACTIVE:
            return StepResult("stale")
        d = await store.load_version(conn, workflow_id=run.workflow_id, version=run.version)
    block = d.blocks[run.current_block or d.start]
    kind = block_type(block["type"])
    external = kind is not None and kind.external
    if run.status == "waiting" or seq == 1:
        stopped = await _stopped(deps, run, block["type"])
        if stopped is not None:
            return stopped
    if external:
        try:
            outcome = await execute(block, run.view(), EngineRuntime(deps, run, None))
        except RetryLater as exc:
            if not final_try:
                return StepResult("retry", reason=exc.reason)
            outcome = StepOutcome("failed", None, detail={"reason": f"gave up: {exc.reason}"})
    async with deps.engine.begin() as conn:
        locked = await runs.load_run(conn, run_id, lock=True)
        if locked is None or locked.step_seq != seq or locked.status not in runs.ACTIVE:
            return StepResult("stale")
        rt = EngineRuntime(deps, locked, conn)
        if not external:
            outcome = await execute(block, locked.view(), rt)
        elif outcome.status == "failed":
            await deliveries.fail_queued(conn, run_id=run_id, seq=seq,
                                         reason=str(outcome.detail.get("reason", "")))
        status = await runs.record_step(conn, locked, block=block, outcome=outcome,
                                        worker=deps.worker)
    return _result(status, seq, outcome, rt.launched)
