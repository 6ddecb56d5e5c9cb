"""Session-wide real backends and one running stack shared by the core tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support import Backends, Stack, open_backends, start_stack


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    b = open_backends(tmp_path_factory.mktemp("backends"))
    yield b
    b.close()


@pytest.fixture(scope="session")
async def stack(backends: Backends, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[Stack]:
    s = await start_stack(backends, tmp_path_factory.mktemp("stack"))
    yield s
    await s.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path
