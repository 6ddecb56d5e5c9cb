"""API-sent messages on the arq workers: the ``send_api_message`` job (one per message, job
id ``<prefix>msg:<id>``) and the sweeper that enqueues queued messages whose job was lost."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from arq.worker import Retry, func

from server.db.models import utcnow
from server.mail import SmtpConfig
from server.messaging.jobs import SEND_JOB, enqueue_sends
from server.messaging.send import MessagingDeps, send_message
from server.messaging.store import due_messages
from server.workflows.runtime import backoff

log = logging.getLogger(__name__)
MAX_TRIES = 8


async def send_api_message(ctx: dict[str, Any], message_id: int) -> str:
    deps: MessagingDeps = ctx["messaging_deps"]
    tries = int(ctx.get("job_try", 1))
    result = await send_message(deps, message_id=message_id, final_try=tries >= MAX_TRIES)
    if result.status == "retry":
        delay = backoff(tries, base=ctx["settings"].message_retry_base)
        log.info("message %s: %s; retrying in %s", message_id, result.reason, delay)
        raise Retry(defer=delay)
    return result.status


async def sweep_once(ctx: dict[str, Any]) -> int:
    settings = ctx["settings"]
    grace = timedelta(seconds=max(1.0, settings.sweep_interval * 2))
    async with ctx["engine"].connect() as conn:
        due = await due_messages(conn, before=utcnow() - grace)
    await enqueue_sends(ctx["redis"], prefix=settings.redis_prefix, queue=settings.queue_name,
                        message_ids=due)
    return len(due)


async def _sweep_forever(ctx: dict[str, Any]) -> None:
    while True:
        await asyncio.sleep(ctx["settings"].sweep_interval)
        try:
            await sweep_once(ctx)
        except Exception as exc:  # noqa: BLE001 - keep sweeping; Redis or the DB may come back
            log.warning("message sweep failed: %s", exc)


async def install(ctx: dict[str, Any]) -> None:
    settings = ctx["settings"]
    smtp = SmtpConfig.from_url(settings.smtp_url) if settings.smtp_url else None
    # The workflow engine's render pool: one set of render processes per worker.
    # And its kept SMTP connections.
    ctx["messaging_deps"] = MessagingDeps(engine=ctx["engine"], smtp=smtp,
                                          renderer=ctx["workflow_deps"].renderer,
                                          pool=ctx["workflow_deps"].mail)
    ctx["message_sweeper"] = asyncio.create_task(_sweep_forever(ctx), name="message-sweeper")


async def uninstall(ctx: dict[str, Any]) -> None:
    sweeper = ctx.pop("message_sweeper", None)
    if sweeper is not None:
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)


def job_functions() -> list[Any]:
    # No stored result, so the sweeper may always enqueue a queued message again; a
    # repeated job finds the message sent or failed and does nothing.
    return [func(send_api_message, name=SEND_JOB, max_tries=MAX_TRIES, keep_result=0)]
