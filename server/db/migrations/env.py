"""Alembic environment: runs migrations on the URL that server.db.engine.migrate sets."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from server.db import models  # noqa: F401  (registers every table on the metadata)
from server.db.models import metadata

config = context.config


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Several processes may start at once; one migrates, the others wait.
            connection.execute(text("SELECT pg_advisory_lock(7262001)"))
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_unlock(7262001)"))
            connection.commit()
    engine.dispose()


run_migrations_online()
