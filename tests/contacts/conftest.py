"""A fresh migrated database per test module for the contact store tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import psycopg
import pytest

from tests.contacts.storage import Db, open_db


@pytest.fixture(scope="module")
async def db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Db]:
    opened = await open_db(tmp_path_factory.mktemp("contacts-db"))
    yield opened
    await opened.engine.dispose()
    if opened.schema is not None:
        with psycopg.connect(os.environ["EVENTFLOW_TEST_DATABASE_URL"], autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{opened.schema}" CASCADE')
