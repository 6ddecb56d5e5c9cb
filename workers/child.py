"""One worker process started by ``python -m workers`` (its settings on stdin)."""

from __future__ import annotations

import asyncio

from server.config import Settings
from server.gctune import tune_gc
from server.logs import setup_logging
from workers.__main__ import run_worker


def main() -> None:
    settings = Settings.load()
    setup_logging(settings.log_level)
    tune_gc()
    asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
