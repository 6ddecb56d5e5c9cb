"""One logging set-up for every eventflow process."""

from __future__ import annotations

import logging
import os


def setup_logging() -> None:
    level = os.environ.get("EVENTFLOW_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aiosqlite", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
