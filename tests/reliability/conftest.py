"""One deployment of separate processes shared by the reliability scenarios."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.reliability.procs import Procs, running
from tests.support import Backends, private_backends


@pytest.fixture(scope="session")
def procs(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Procs]:
    own = private_backends(backends, tmp_path_factory.mktemp("procs-db"))
    try:
        with running(own, tmp_path_factory.mktemp("procs")) as deployment:
            yield deployment
    finally:
        own.close()


@pytest.fixture
async def http(procs: Procs) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=procs.http_url, timeout=30) as client:
        yield client
