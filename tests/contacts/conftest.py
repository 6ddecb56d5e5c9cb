"""A fresh migrated database per test module for the contact store tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import psycopg
import pytest

from tests.contacts.storage import Db, open_db
from tests.support import Backends, Stack, private_backends, start_stack


@pytest.fixture(scope="module")
async def db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Db]:
    opened = await open_db(tmp_path_factory.mktemp("contacts-db"))
    yield opened
    await opened.engine.dispose()
    if opened.schema is not None:
        with psycopg.connect(os.environ["EVENTFLOW_TEST_DATABASE_URL"], autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{opened.schema}" CASCADE')


@pytest.fixture(scope="module")
async def stack(backends: Backends, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[Stack]:
    """The contact API tests get a database of their own: events of other test modules
    create contacts too, and the seed's identifiers must start unused here."""
    tmp = tmp_path_factory.mktemp("contacts-stack")
    own = private_backends(backends, tmp)
    s = await start_stack(own, tmp)
    yield s
    await s.stop()
    own.close()
