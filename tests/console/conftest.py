"""The browser fixtures the console's browser test modules share: Playwright's sync API
(skipped, or failed under EVENTFLOW_REQUIRE_BROWSER, without Debian's chromium) and one
chromium per module. Each module starts its own ``devstack``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.console.browser import WAIT_MS, launch, require_browser


@pytest.fixture(scope="module")
def sync_api() -> Any:
    api = require_browser()
    api.expect.set_options(timeout=WAIT_MS)
    return api


@pytest.fixture(scope="module")
def browser(sync_api: Any) -> Iterator[Any]:
    playwright, chromium = launch(sync_api)
    yield chromium
    chromium.close()
    playwright.stop()
