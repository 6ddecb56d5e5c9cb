"""One logging set-up for every eventflow process."""

from __future__ import annotations

import logging

# Chatter of libraries, never wanted: a line per query or request.
QUIET = ("aiosqlite", "httpx", "httpcore")
# Lines worth seeing only when debugging: Alembic's plugin and revision lines on every
# start, the development mail sink's line per SMTP command (aiosmtpd logs as "mail.log").
DEBUG_ONLY = ("alembic", "mail.log")


def setup_logging(level: str) -> None:
    """``level``: ``Settings.log_level``."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET + (DEBUG_ONLY if level != "DEBUG" else ()):
        logging.getLogger(name).setLevel(logging.WARNING)
