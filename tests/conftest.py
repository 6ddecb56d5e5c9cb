"""Session-wide real backends and one running stack shared by the core tests."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Backends, Stack, open_backends, start_stack


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    b = open_backends(tmp_path_factory.mktemp("backends"))
    yield b
    b.close()


_loop: list[asyncio.AbstractEventLoop] = []


@pytest.fixture(scope="session", autouse=True)
async def _session_loop() -> AsyncIterator[None]:
    """The one event loop of the async tests (``asyncio_default_test_loop_scope``), for
    ``_dump_tasks``."""
    _loop.append(asyncio.get_running_loop())
    yield
    _loop.clear()


def _dump_tasks() -> None:
    """Every asyncio task's stack, on stderr: pytest-timeout prints the threads', where a
    hung test's main thread only shows the event loop waiting in select."""
    tasks = asyncio.all_tasks()
    print(f"+++ {len(tasks)} asyncio tasks shortly before the timeout +++", file=sys.stderr)
    for task in tasks:
        print(f"--- {task!r}", file=sys.stderr)
        task.print_stack(limit=30, file=sys.stderr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, None]:
    marker = item.get_closest_marker("timeout")
    limit = float(marker.args[0]) if marker and marker.args else float(
        item.config.getini("timeout") or 0)
    timer = None
    if limit > 60 and _loop:
        loop = _loop[0]
        timer = threading.Timer(limit - 30, lambda: loop.call_soon_threadsafe(_dump_tasks))
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()


@pytest.fixture(scope="session")
async def stack(backends: Backends, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[Stack]:
    s = await start_stack(backends, tmp_path_factory.mktemp("stack"))
    yield s
    await s.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path
