"""One logging set-up for every eventflow process."""

from __future__ import annotations

import logging


def setup_logging(level: str) -> None:
    """``level``: ``Settings.log_level``."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aiosqlite", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
