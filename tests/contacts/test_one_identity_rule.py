"""Ingestion and the workflow simulator derive an event's key by the one identity rule."""

from __future__ import annotations

from typing import Any

import pytest

from server.codec.jsonbody import event_from_json
from server.errors import Violation
from server.ingest.accept import Acceptance, accept
from server.templating.pool import RenderPool
from server.workflows.simulator import simulate

FLOW = {"name": "keys", "trigger": {"eventTypeKey": "seen"}, "start": "wait",
        "blocks": [{"id": "wait", "type": "timer", "duration": "PT1M"}]}


async def _no_templates(template_id: int) -> tuple[str, str, str]:
    raise AssertionError("the key tests use no template")


class _NoContactJson:
    async def violations(self, name: str, value: Any, *, account_id: int) -> list[Violation]:
        raise AssertionError("the key tests send no contactJson")


ACCEPTANCE = Acceptance(max_bytes=1 << 20, contact_json=_NoContactJson())


async def ingest_key(doc: dict[str, Any]) -> str:
    """The keyValue real ingestion stores for a JSON event body."""
    event = await accept(event_from_json(doc), account_id=1, using=ACCEPTANCE)
    return event.key_value


async def simulated_key(doc: dict[str, Any]) -> str:
    """The ``${key}`` a simulated run of the same body sees."""
    # No template is rendered, so the pool never starts a process.
    out = await simulate(definition=FLOW, events=[doc], templates=_no_templates,
                         renderer=RenderPool(), sender="sim@example.com", account_id=1,
                         acceptance=ACCEPTANCE)
    (run,) = out["runs"]
    return str(run["keyValue"])


@pytest.mark.parametrize(("params", "key"), [
    ([{"name": "email", "value": "Site@UKR.NET"}], "Site@UKR.NET"),
    ([{"name": "Email", "value": "not-an-email"}, {"name": "phone", "value": "380501234567"}],
     "not-an-email"),
    ([{"name": "phone", "value": "+38 (050) 123-45-67"}], "+38 (050) 123-45-67"),
    ([{"name": "externalCustomerId", "value": " null "}, {"name": "SMS", "value": 380501234567}],
     "380501234567"),
    ([{"name": "PushToken", "value": "  tok  "}, {"name": "CONTACT_ID", "value": 17.0}], "17"),
    ([{"name": "email", "value": "  "}, {"name": "UserEmail", "value": "u@b.ua"}], "u@b.ua"),
])
async def test_ingest_and_simulator_derive_the_issue_examples_alike(
        params: list[dict[str, Any]], key: str) -> None:
    """The examples of issue 10: the key is the first identifier as sent, trimmed, in both."""
    doc = {"eventTypeKey": "seen", "params": params}
    assert await ingest_key(doc) == key
    assert await simulated_key(doc) == key
