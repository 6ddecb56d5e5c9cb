"""arq worker settings built from the one Settings object; dependencies go into ctx.

Events and workflow steps do not travel as arq jobs: the worker's event pump
(``workers.events``) takes woken accounts and processes their events in batches, its step
pump (``workers.steps``) claims due steps in batches. arq carries the API messages, each
job with a timeout sized to what it does (a job of a killed worker is taken again once
arq's in-progress mark, timeout + 10 s, expires).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from arq.worker import Worker

from server.app import redis_settings
from server.config import Settings
from server.db.engine import create_engine

# Longest a job may run: a message renders (2 s limit), talks SMTP (its timeout) and
# commits; far less than arq's default of 300 s.
JOB_TIMEOUT = 30


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def build_worker(settings: Settings, *, burst: bool = False, max_jobs: int = 50,
                 extra_functions: list[Any] | None = None,
                 processors: list[Any] | None = None, drainers: int | None = None,
                 batch_size: int | None = None, step_batch_size: int | None = None,
                 step_loops: int | None = None, **kwargs: Any) -> Worker:
    """A worker for this deployment's queue; ``on_startup`` opens the engine and starts the
    event pump. ``processors``: one-event processors (``server.processing.batch.Processor``)
    run in every batch after contacts and orders; ``batch_size`` events per batch,
    ``step_batch_size`` workflow steps per claim, ``step_loops`` claiming loops of the step
    pump (tests: 0 leaves it the steps handed to it by its event batches)."""
    assert settings.redis_url, "resolve REDIS_URL before building a worker"

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["settings"] = settings
        ctx["engine"] = create_engine(settings)
        ctx["worker_name"] = worker_name()
        ctx["processors"] = list(processors or [])
        if step_batch_size:
            ctx["step_batch_size"] = step_batch_size
        if step_loops is not None:
            ctx["step_loops"] = step_loops
        from workers.plugins import install

        await install(ctx)
        from server.processing.batch import BATCH_SIZE
        from workers.events import DRAINERS, EventPump

        pump = EventPump(settings=settings, engine=ctx["engine"],
                         processors=ctx["batch_processors"], ctx=ctx,
                         worker=ctx["worker_name"],
                         drainers=drainers or DRAINERS,
                         batch_size=batch_size or BATCH_SIZE)
        ctx["event_pump"] = pump
        pump.start()
        # What was left before this worker started. A database that is away now (restarting,
        # its connections ended) must not end the worker: the sweeper tries again.
        await pump.sweep()

    async def shutdown(ctx: dict[str, Any]) -> None:
        pump = ctx.pop("event_pump", None)
        if pump is not None:
            await pump.stop()
        from workers.plugins import uninstall

        await uninstall(ctx)
        await ctx["engine"].dispose()

    functions: list[Any] = list(extra_functions or [])
    from workers.plugins import job_functions

    functions += job_functions()
    kwargs.setdefault("job_timeout", JOB_TIMEOUT)
    return Worker(
        functions=functions,
        queue_name=settings.queue_name,
        redis_settings=redis_settings(settings.redis_url),
        on_startup=startup,
        on_shutdown=shutdown,
        burst=burst,
        max_jobs=max_jobs,
        keep_result=3600,
        handle_signals=False,
        **kwargs,
    )
