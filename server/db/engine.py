"""Database engines and start-up migrations for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from server.config import Settings, sync_database_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def sqlite_pragmas(settings: Settings) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # WAL lets readers and several processes work beside one writer;
        # the busy timeout makes writers from other processes wait instead of failing.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return on_connect


def create_engine(settings: Settings) -> AsyncEngine:
    """The async engine for one process; callers own it and dispose it on shutdown."""
    url = settings.database_url
    if url.startswith("sqlite"):
        db_path = url.split(":///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_size=5, max_overflow=10)
        event.listen(engine.sync_engine, "connect", sqlite_pragmas(settings))
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def migrate(settings: Settings) -> None:
    """Bring the schema to the newest Alembic revision (blocking; run before serving)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sync_database_url(settings.database_url).replace("%", "%%"))
    url = settings.database_url
    if url.startswith("sqlite"):
        db_path = url.split(":///", 1)[-1]
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    # Features add their own revisions on top of 0001; "heads" applies every branch.
    command.upgrade(cfg, "heads")


async def migrate_async(settings: Settings) -> None:
    await asyncio.to_thread(migrate, settings)
