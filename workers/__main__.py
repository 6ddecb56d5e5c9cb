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

from server.config import Settings
from server.embedded import running_embedded_url
from server.logs import setup_logging
from server.procs import spawn, terminate
from workers.settings import build_worker

log = logging.getLogger("workers")
CHILD = "workers.child"


async def run_worker(settings: Settings) -> None:
    """One worker in this process until SIGINT/SIGTERM."""
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
        asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
