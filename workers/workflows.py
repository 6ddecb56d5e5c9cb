"""Workflow jobs on the arq workers: the batch processor that starts and stops runs, the
``workflow_step`` job (one per run step, job id ``<prefix>wf:<run>:<seq>``, deferred for
timers) and the sweeper that re-enqueues steps whose job was lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import datetime, timedelta
from typing import Any

import httpx
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from arq.worker import Retry, func
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.contact_json import ContactJsonCheck
from server.db.models import utcnow
from server.eventtypes.rules import EventTypeRules
from server.ingest.accept import Acceptance
from server.ingest.dispatch import Dispatcher
from server.mail import SmtpConfig
from server.processing.batch import Batch
from server.templating.pool import RenderPool
from server.workflows import runs
from server.workflows.engine import EngineDeps, StepResult, run_step
from server.workflows.runtime import backoff
from server.workflows.trigger import BatchEvent, handle_batch

log = logging.getLogger(__name__)
STEP_JOB = "workflow_step"
MAX_TRIES = 8
JOB_EXPIRES_MS = 7 * 24 * 3600 * 1000

# Same keys and job format as arq's enqueue_job, for many jobs in one round trip:
# a job is added only if neither its job key nor its result key exists.
ENQUEUE_LUA = """
local queue = KEYS[1]
local added = 0
for i = 1, #ARGV, 4 do
  local job_id, payload, score, ttl = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if redis.call('EXISTS', '""" + result_key_prefix + """' .. job_id) == 0 then
    if redis.call('SET', '""" + job_key_prefix + """' .. job_id, payload, 'PX', ttl, 'NX') then
      redis.call('ZADD', queue, score, job_id)
      added = added + 1
    end
  end
end
return added
"""


def step_job_id(prefix: str, run_id: int, seq: int) -> str:
    return f"{prefix}wf:{run_id}:{seq}"


async def enqueue_step(ctx: dict[str, Any], run_id: int, seq: int,
                       wake: datetime | None = None) -> None:
    settings = ctx["settings"]
    await ctx["redis"].enqueue_job(STEP_JOB, run_id, seq,
                                   _job_id=step_job_id(settings.redis_prefix, run_id, seq),
                                   _queue_name=settings.queue_name,
                                   _defer_until=wake if wake and wake > utcnow() else None)


async def enqueue_first_steps(ctx: dict[str, Any], run_ids: list[int]) -> int:
    """Enqueue step 1 of these runs now, in one round trip; how many were new to Redis."""
    settings = ctx["settings"]
    redis = ctx["redis"]
    script = ctx.get("enqueue_script")
    if script is None:
        script = ctx["enqueue_script"] = redis.register_script(ENQUEUE_LUA)
    now = timestamp_ms()
    args: list[Any] = []
    for run_id in run_ids:
        payload = serialize_job(STEP_JOB, (run_id, 1), {}, None, now,
                                serializer=redis.job_serializer)
        args += [step_job_id(settings.redis_prefix, run_id, 1), payload, now, JOB_EXPIRES_MS]
    return int(await script(keys=[settings.queue_name], args=args))


async def workflow_batch(conn: AsyncConnection, batch: Batch, ctx: dict[str, Any]) -> None:
    """A ``BatchProcessor``: starts and stops runs inside the batch's transaction; the new
    runs' first steps are enqueued after its commit (the step sweeper covers a crash)."""
    result = await handle_batch(conn, account_id=batch.account_id, worker=batch.worker, events=[
        BatchEvent(id=e.id, event_type_key=e.event_type_key, key_value=e.key_value,
                   params=e.params, contact_id=batch.contacts.get(e.id))
        for e in batch.events])
    if not result.started:
        return
    started = list(result.started)

    async def after_commit() -> None:
        await enqueue_first_steps(ctx, started)

    batch.post_commit.append(after_commit)


async def workflow_step(ctx: dict[str, Any], run_id: int, seq: int) -> str:
    deps: EngineDeps = ctx["workflow_deps"]
    final = int(ctx.get("job_try", 1)) >= MAX_TRIES
    result: StepResult = await run_step(deps, run_id=run_id, seq=seq, final_try=final)
    if result.status == "retry":
        delay = backoff(int(ctx.get("job_try", 1)), base=deps.settings.workflow_retry_base)
        log.info("run %s step %s: %s; retrying in %s", run_id, seq, result.reason, delay)
        raise Retry(defer=delay)
    if result.launched:
        await Dispatcher(ctx["redis"], deps.engine, settings=deps.settings).enqueue(
            result.launched)
    if result.next_seq is not None:
        await enqueue_step(ctx, run_id, result.next_seq, result.wake)
    return result.status


async def sweep_once(ctx: dict[str, Any]) -> int:
    """Enqueue the due step of every active run whose job is overdue (a no-op if queued)."""
    deps: EngineDeps = ctx["workflow_deps"]
    grace = timedelta(seconds=max(1.0, deps.settings.sweep_interval * 2))
    async with deps.engine.connect() as conn:
        due = await runs.due_runs(conn, before=utcnow() - grace)
    for run_id, seq, _due in due:
        await enqueue_step(ctx, run_id, seq)
    return len(due)


async def _sweep_forever(ctx: dict[str, Any]) -> None:
    while True:
        await asyncio.sleep(ctx["settings"].sweep_interval)
        try:
            await sweep_once(ctx)
        except Exception as exc:  # noqa: BLE001 - keep sweeping; Redis or the DB may come back
            log.warning("workflow sweep failed: %s", exc)


async def install(ctx: dict[str, Any]) -> None:
    settings = ctx["settings"]
    ctx["worker_name"] = f"{socket.gethostname()}:{os.getpid()}"
    smtp = SmtpConfig.from_url(settings.smtp_url) if settings.smtp_url else None
    ctx["workflow_deps"] = EngineDeps(engine=ctx["engine"], settings=settings, smtp=smtp,
                                      http=httpx.AsyncClient(timeout=10),
                                      worker=ctx["worker_name"],
                                      renderer=RenderPool(processes=settings.render_processes),
                                      acceptance=Acceptance(
                                          max_bytes=settings.max_event_bytes,
                                          contact_json=ContactJsonCheck(ctx["engine"]),
                                          # No change feed: read at every launch.
                                          event_types=EventTypeRules(ctx["engine"])))
    ctx["batch_processors"].append(workflow_batch)
    ctx["workflow_sweeper"] = asyncio.create_task(_sweep_forever(ctx), name="workflow-sweeper")


async def uninstall(ctx: dict[str, Any]) -> None:
    sweeper = ctx.pop("workflow_sweeper", None)
    if sweeper is not None:
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)
    deps = ctx.pop("workflow_deps", None)
    if deps is not None:
        await deps.http.aclose()
        await deps.renderer.close()


def job_functions() -> list[Any]:
    # No stored result: the job id is free again once it ends, so the sweeper can always
    # re-enqueue a step; a repeated step finds the run moved on and does nothing.
    return [func(workflow_step, name=STEP_JOB, max_tries=MAX_TRIES, keep_result=0)]
