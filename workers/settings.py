"""arq worker settings built from the one Settings object; dependencies go into ctx."""

from __future__ import annotations

from typing import Any

from arq.worker import Worker, func

from server.app import redis_settings
from server.config import Settings
from server.db.engine import create_engine
from workers.events import process_event


def build_worker(settings: Settings, *, burst: bool = False, max_jobs: int = 50,
                 extra_functions: list[Any] | None = None,
                 processors: list[Any] | None = None, **kwargs: Any) -> Worker:
    """A worker for this deployment's queue; ``on_startup`` opens the engine."""
    assert settings.redis_url, "resolve REDIS_URL before building a worker"

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["settings"] = settings
        ctx["engine"] = create_engine(settings)
        ctx["processors"] = list(processors or [])
        from workers.plugins import install

        await install(ctx)

    async def shutdown(ctx: dict[str, Any]) -> None:
        from workers.plugins import uninstall

        await uninstall(ctx)
        await ctx["engine"].dispose()

    # No stored result: a job that failed for good must not block the sweeper's re-enqueue
    # for an hour; process_event is idempotent through processed_at instead.
    functions = [func(process_event, name="process_event", max_tries=10, keep_result=0)]
    functions += extra_functions or []
    from workers.plugins import job_functions

    functions += job_functions()
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
