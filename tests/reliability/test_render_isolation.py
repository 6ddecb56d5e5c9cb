"""Finding 1 (templates): one account's hostile previews neither stall another account
nor escape their bounds (regex, string building, number growth, CPU past the limit)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.reliability import latency
from tests.reliability.procs import Procs

PREVIEW = "/api/v1/messages/preview"

# (template, context, what the answer must say)
HOSTILE: dict[str, tuple[str, dict[str, Any], str]] = {
    # Backtracking regex: 10.7 s on Python's re for 26 letters, linear on RE2.
    "regex": ("$data.s.matches('(a|a)*b')", {"data": {"s": "a" * 26}}, "false"),
    # Doubling a string: 2^28 characters unless refused before it is built.
    "concat": ("#set($s = 'ab')#foreach($i in [1..27])#set($s = $s.concat($s))#end$s.length()",
               {}, "string longer than 1000000 characters"),
    # Squaring a number: each step doubles its digits; refused before the multiplication.
    "multiply": ("#set($x = 3)#foreach($i in [1..40])#set($x = $x * $x)#end$x",
                 {}, "number wider than 4096 bits"),
    # 10^8 comparisons in one method call, where no cooperative check runs: the render
    # process is killed at the time limit.
    "cpu": (("#set($row = [1..10000])#set($a = [])#set($b = [])"
             "#foreach($i in [1..10000])#set($d = $a.add($row))#set($d = $b.add($row))#end"
             "$a.equals($b)"), {}, "render took too long"),
}


async def _preview(procs: Procs, http: httpx.AsyncClient, template: str,
                   context: dict[str, Any]) -> str:
    r = await http.post(PREVIEW, headers=procs.auth(), timeout=60,
                              json={"template": template, "context": context})
    doc = r.json()
    return str(doc.get("rendered", doc.get("error")))


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_preview_does_not_slow_another_account(procs: Procs, http: httpx.AsyncClient, name: str) -> None:
    """While one account previews a hostile template, another account's GETs keep p99
    within the ceiling, and the preview answers within its bound with the bound's reason."""
    template, context, expected = HOSTILE[name]

    async def other_account_call() -> None:
        r = await http.get("/api/v1/event-types", headers=procs.auth(procs.other_key))
        assert r.status_code == 200

    answers = await latency.assert_isolated(
        f"preview {name}", other_account_call, lambda: _preview(procs, http, template, context))
    assert answers
    assert all(expected in str(a) for a in answers), answers[:3]
