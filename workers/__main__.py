"""``python -m workers``: one more worker process against the same Redis and database."""

from __future__ import annotations

import asyncio
import logging
import signal

from server.config import Settings
from server.embedded import running_embedded_url
from server.logs import setup_logging
from workers.settings import build_worker

log = logging.getLogger("workers")


async def _main(settings: Settings) -> None:
    worker = build_worker(settings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(worker.async_run())
    log.info("worker consuming queue %s at %s", settings.queue_name, settings.redis_url)
    done, _ = await asyncio.wait({task, asyncio.create_task(stop.wait())},
                                 return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
        return
    log.info("worker stopping: letting running jobs finish")
    await worker.close()
    task.cancel()


def main() -> None:
    settings = Settings.load()
    setup_logging(settings.log_level)
    if not settings.redis_url:
        url = running_embedded_url(settings)
        if url is None:
            raise SystemExit("REDIS_URL is not set and no embedded Valkey runs for data dir "
                             f"{settings.data_dir}: start `make run` first or set REDIS_URL")
        settings = settings.with_(redis_url=url)
    asyncio.run(_main(settings))


if __name__ == "__main__":
    main()
