"""Workflows on the workers: the batch processor that starts and stops runs (inside the
event batch's transaction), claims their first steps for this process's step pump and
hands them to it after the commit (or wakes the step pumps), and the step pump
(``workers.steps``) that claims due steps in batches and executes them.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.contact_json import ContactJsonCheck
from server.eventtypes.rules import EventTypeRules
from server.ingest.accept import Acceptance
from server.mail import SmtpConfig
from server.mail.pool import SmtpPool
from server.processing.batch import Batch
from server.templating.pool import RenderPool
from server.workflows.claims import claim_runs
from server.workflows.engine import EngineDeps
from server.workflows.trigger import BatchEvent, handle_batch
from workers.steps import (
    HANDOFF_STEPS,
    LOOPS,
    MAX_SLOW_BATCHES,
    STEP_BATCH,
    StepPump,
    wake_steps,
)

# More connections than the steps a pump holds at once (its loops' batches, the slow ones
# in the background and the handed-off ones), so no call waits for a connection behind a
# slow target's (httpx's default of 100 let one account's hanging webhooks hold up everyone's).
WEBHOOK_LIMITS = httpx.Limits(
    max_connections=(LOOPS + MAX_SLOW_BATCHES) * STEP_BATCH + HANDOFF_STEPS + 100,
    max_keepalive_connections=50)

log = logging.getLogger(__name__)


async def workflow_batch(conn: AsyncConnection, batch: Batch, ctx: dict[str, Any]) -> None:
    """A ``BatchProcessor``: starts and stops runs inside the batch's transaction, and claims
    the new runs' first steps there for this process's step pump (as many as it has room
    for), which runs them after the commit; for the others the step pumps are woken after
    the commit (they poll anyway). Past events start and stop nothing (eSputnik: they feed
    history and segmentation)."""
    live = [BatchEvent(id=e.id, event_type_key=e.event_type_key, key_value=e.key_value,
                       params=e.params, contact_id=batch.contacts.get(e.id))
            for e in batch.events if not e.past]
    if not live:
        return
    result = await handle_batch(conn, account_id=batch.account_id, worker=batch.worker,
                                events=live)
    if not result.started:
        return
    pump: StepPump | None = ctx.get("step_pump")
    room = pump.room() if pump is not None else 0
    handed = (await claim_runs(conn, owner=pump.owner, run_ids=result.started[:room])
              if pump is not None and room else [])
    left = len(result.started) > len(handed)

    async def after_commit() -> None:
        if pump is not None:
            pump.hand_off(handed)
        if left:
            await wake_steps(ctx["redis"], ctx["settings"])

    batch.post_commit.append(after_commit)


async def install(ctx: dict[str, Any]) -> None:
    settings = ctx["settings"]
    smtp = SmtpConfig.from_url(settings.smtp_url) if settings.smtp_url else None
    renderer = RenderPool(processes=settings.render_processes,
                          per_account=settings.render_processes)
    deps = EngineDeps(engine=ctx["engine"], settings=settings, smtp=smtp,
                      http=httpx.AsyncClient(timeout=10, limits=WEBHOOK_LIMITS),
                      worker=ctx["worker_name"],
                      # A batch's letters render on every child: no other caller waits here.
                      renderer=renderer,
                      acceptance=Acceptance(
                          max_bytes=settings.max_event_bytes,
                          contact_json=ContactJsonCheck(ctx["engine"]),
                          # No change feed: read at every launch.
                          event_types=EventTypeRules(ctx["engine"])),
                      mail=SmtpPool())
    ctx["workflow_deps"] = deps
    ctx["batch_processors"].append(workflow_batch)
    pump = StepPump(deps=deps, settings=settings, redis=ctx["redis"], owner=ctx["worker_name"],
                    batch_size=ctx.get("step_batch_size") or STEP_BATCH,
                    loops=ctx.get("step_loops", LOOPS))
    ctx["step_pump"] = pump
    pump.start()


async def uninstall(ctx: dict[str, Any]) -> None:
    pump = ctx.pop("step_pump", None)
    if pump is not None:
        await pump.stop()
    deps = ctx.pop("workflow_deps", None)
    if deps is not None:
        await deps.http.aclose()
        await deps.mail.close()
        await deps.renderer.close()


def job_functions() -> list[Any]:
    # Workflow steps are no arq jobs: the step pump claims them from the database.
    return []
