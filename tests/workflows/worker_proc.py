"""A worker process for the tests: ``python -m tests.workflows.worker_proc`` with the
deployment's environment and the production timeouts and leases, a small ``max_jobs``,
``WF_TEST_BATCH`` events per batch when set and ``WF_TEST_STEP_BATCH`` (default 10) steps
per claim, so several workers share a burst."""

from __future__ import annotations

import asyncio
import os

from server.config import Settings
from workers.settings import build_worker


async def main() -> None:
    settings = Settings.from_env()
    worker = build_worker(settings, max_jobs=int(os.environ.get("WF_TEST_MAX_JOBS", "5")),
                          batch_size=int(os.environ.get("WF_TEST_BATCH", "0")) or None,
                          step_batch_size=int(os.environ.get("WF_TEST_STEP_BATCH", "10")),
                          poll_delay=0.05)
    await worker.main()


if __name__ == "__main__":
    asyncio.run(main())
