"""Alembic environment: runs migrations on the URL that server.db.engine.migrate sets."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from server.db import models  # noqa: F401  (registers every table on the metadata)
from server.db.dialect import backend_of
from server.db.models import metadata

config = context.config


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        backend = backend_of(connection)
        if backend.migration_lock is not None:
            # Several processes may start at once; one migrates, the others wait.
            connection.execute(backend.migration_lock)
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=backend.render_as_batch,
        )
        with context.begin_transaction():
            context.run_migrations()
        if backend.migration_unlock is not None:
            connection.execute(backend.migration_unlock)
            connection.commit()
    engine.dispose()


run_migrations_online()
