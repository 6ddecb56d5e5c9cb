"""A stack with a database of its own for the segment tests: other modules' events make
contacts too, and member counts must start at zero here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import Backends, Stack, private_backends, start_stack


@pytest.fixture(scope="module")
async def stack(backends: Backends, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("segments-stack")
    own = private_backends(backends, tmp)
    s = await start_stack(own, tmp)
    yield s
    await s.stop()
    own.close()
