"""``python -m workers``: ``EVENTFLOW_WORKER_PROCESSES`` worker processes (default: one per
core) against the same Redis and database. With more than one, this process supervises
them: a child that dies is started again at once (its leases expire within seconds and
the new one, or any other, takes its partitions), SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from typing import Any

from redis.exceptions import RedisError

from server.config import Settings
from server.embedded import running_embedded_url
from server.gctune import tune_gc
from server.logs import setup_logging
from server.procs import spawn, terminate
from workers.settings import build_worker

log = logging.getLogger("workers")
CHILD = "workers.child"


# Seconds between attempts to start a worker again after it lost Redis.
REDIS_RETRY_SECONDS = 1.0


async def run_worker(settings: Settings) -> None:
    """One worker in this process until SIGINT/SIGTERM. A worker that lost Redis (arq
    ends its run on a connection error, also while starting) is built and started again
    every ``REDIS_RETRY_SECONDS`` until Redis answers: the process outlives an outage."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        worker = build_worker(settings)
        task = asyncio.create_task(worker.async_run())
        stopping = asyncio.create_task(stop.wait())
        log.info("worker consuming queue %s at %s", settings.queue_name, settings.redis_url)
        done, _ = await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if task not in done:
            log.info("worker stopping: letting running jobs finish")
            await worker.close()
            task.cancel()
            return
        stopping.cancel()
        exc = task.exception()
        if exc is None:
            return
        if not isinstance(exc, (RedisError, OSError)):
            raise exc
        log.warning("worker lost Redis (%s); starting it again in %.0f s", exc,
                    REDIS_RETRY_SECONDS)
        await _discard(worker)
        try:
            await asyncio.wait_for(stop.wait(), REDIS_RETRY_SECONDS)
        except TimeoutError:
            pass


async def _discard(worker: Any) -> None:
    """Release what a worker that lost Redis holds: its event pump and engine (its
    ``on_shutdown``, which arq's ``close`` skips when Redis is gone) and its pool. Jobs it
    was running finish on their own."""
    if "engine" in worker.ctx and worker.on_shutdown is not None:
        try:
            await worker.on_shutdown(worker.ctx)
        except Exception as exc:  # noqa: BLE001 - best effort; the process goes on
            log.debug("shutting down the worker that lost Redis: %s", exc)
    pool = getattr(worker, "_pool", None)
    if pool is not None:
        try:
            await pool.close(close_connection_pool=True)
        except Exception as exc:  # noqa: BLE001 - its Redis is gone
            log.debug("closing the pool of the worker that lost Redis: %s", exc)


def supervise(settings: Settings, count: int) -> None:
    """Run ``count`` worker processes, restarting any that dies, until SIGTERM/SIGINT."""
    stop = {"now": False}

    def on_signal(_signum: int, _frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    children: list[subprocess.Popen[bytes]] = [spawn(CHILD, settings=settings)
                                               for _ in range(count)]
    log.info("%d worker processes started", count)
    try:
        while not stop["now"]:
            for i, proc in enumerate(children):
                if proc.poll() is not None and not stop["now"]:
                    log.warning("worker process %s exited with code %s; starting another",
                                proc.pid, proc.returncode)
                    time.sleep(0.2)  # a child failing at start must not spin
                    children[i] = spawn(CHILD, settings=settings)
            time.sleep(0.2)
    finally:
        for proc in children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in children:
            terminate(proc, timeout=15)


def resolved(settings: Settings) -> Settings:
    if settings.redis_url:
        return settings
    url = running_embedded_url(settings)
    if url is None:
        raise SystemExit("REDIS_URL is not set and no embedded Valkey runs for data dir "
                         f"{settings.data_dir}: start `make run` first or set REDIS_URL")
    return settings.with_(redis_url=url)


def main() -> None:
    settings = Settings.load()
    setup_logging(settings.log_level)
    settings = resolved(settings)
    if settings.worker_processes > 1:
        supervise(settings, settings.worker_processes)
    else:
        tune_gc()
        asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
