"""Database engines and start-up migrations (what differs per database: ``dialect``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from server.config import Settings
from server.db.dialect import backend_for_url, sync_database_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Seconds a serving process (and the ingest writer) waits for a lock another connection
# holds before it answers UNAVAILABLE (SQLite's busy timeout, PostgreSQL's lock_timeout).
DB_WAIT_SECONDS = 5.0


def create_engine(settings: Settings, *, lock_wait: float | None = None) -> AsyncEngine:
    """The async engine for one process; callers own it and dispose it on shutdown.
    ``lock_wait``: seconds a statement waits for another connection's lock before it fails
    (the serving processes give DB_WAIT_SECONDS; None: SQLite 10 s, PostgreSQL forever)."""
    backend = backend_for_url(settings.database_url)
    backend.prepare(settings.database_url)
    engine = create_async_engine(settings.database_url, **backend.engine_options())
    on_connect = backend.on_connect(synchronous=settings.sqlite_synchronous,
                                    lock_wait=lock_wait)
    if on_connect is not None:
        event.listen(engine.sync_engine, "connect", on_connect)
    return engine


def migrate(settings: Settings) -> None:
    """Bring the schema to the newest Alembic revision (blocking; run before serving)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sync_database_url(settings.database_url).replace("%", "%%"))
    backend_for_url(settings.database_url).prepare(settings.database_url)
    # Features add their own revisions on top of 0001; "heads" applies every branch.
    command.upgrade(cfg, "heads")


async def migrate_async(settings: Settings) -> None:
    await asyncio.to_thread(migrate, settings)
