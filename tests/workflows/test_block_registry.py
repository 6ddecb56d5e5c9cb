"""The block registry: every block module registers its types, the docs list every type,
and a block added as one module is checked on save, run by the engine and the simulator."""

from __future__ import annotations

import importlib.util
import pkgutil
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import server.workflows.blocks as blocks_pkg
from server.workflows.blocks import base, block_type, names
from tests.support import Stack
from tests.workflows.conftest import create_workflow, eventually, runs_of, unique_key

DOCS = Path(__file__).parents[2] / "docs" / "workflows.md"

# A whole new block type, as a contributor would write it in server/workflows/blocks/.
STAMP_MODULE = '''
from server.workflows.blocks.base import BlockType, register, text
from server.workflows.runtime import StepOutcome


def check(block, say):
    if not isinstance(block.get("label"), str) or not block["label"]:
        say("label", "is required: the text to stamp")


async def run(block, view, rt):
    return StepOutcome("done", block.get("next"),
                       detail={"stamp": text(view, block["label"])})


register(BlockType("stamp", run=run, check=check, ref_fields=("label",)))
'''


def _documented_types() -> set[str]:
    section = DOCS.read_text().split("### Blocks", 1)[1].split("\n#", 1)[0]
    found: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            found |= set(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return found


def test_every_block_type_is_documented() -> None:
    """docs/workflows.md's block table names exactly the registered block types."""
    assert _documented_types() == set(names())


def test_every_block_module_registers_a_type() -> None:
    """Each module of server/workflows/blocks but ``base`` registers at least one type."""
    modules = {f"{blocks_pkg.__name__}.{m.name}" for m in pkgutil.iter_modules(blocks_pkg.__path__)
               if m.name != "base"}
    registered = {block_type(n).run.__module__ for n in names()}  # type: ignore[union-attr]
    assert registered == modules


@pytest.fixture
def stamp_block(tmp_path: Path) -> Iterator[None]:
    path = tmp_path / "stamp_block.py"
    path.write_text(STAMP_MODULE)
    spec = importlib.util.spec_from_file_location("stamp_block", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["stamp_block"] = module
    spec.loader.exec_module(module)
    try:
        yield
    finally:
        base._TYPES.pop("stamp", None)  # the registry is process-wide; leave it as found
        sys.modules.pop("stamp_block", None)


def _flow(key: str, label: Any) -> dict[str, Any]:
    return {"name": "stamped", "active": True, "trigger": {"eventTypeKey": key},
            "start": "s", "blocks": [{"id": "s", "type": "stamp", "label": label,
                                      "next": "done"}, {"id": "done", "type": "end"}]}


async def test_a_block_in_one_new_module_works_everywhere(wf: Stack, stamp_block: None) -> None:
    """A registered module is all a new block needs: save checks it, workers and the
    simulator run it."""
    key = unique_key("stamp")
    bad = await wf.http.post("/api/v1/workflows", json=_flow(key, ""), headers=wf.auth())
    assert bad.status_code == 400
    assert [v["field"] for v in bad.json()["violations"]] == ["blocks[0].label"]
    workflow_id = await create_workflow(wf, _flow(key, "hello ${name}"))
    r = await wf.post_event({"eventTypeKey": key, "keyValue": "k1",
                             "params": [{"name": "name", "value": "Ann"}]})
    assert r.status_code == 200, r.text

    async def completed() -> Any:
        runs = await runs_of(wf, workflow_id)
        return runs if runs and runs[0]["status"] == "completed" else None

    (run,) = await eventually(completed)
    steps = (await wf.http.get(f"/api/v1/workflow-runs/{run['id']}",
                               headers=wf.auth())).json()["steps"]
    assert steps[0]["type"] == "stamp" and steps[0]["detail"] == {"stamp": "hello Ann"}
    sim = await wf.http.post("/api/v1/workflows/simulate", headers=wf.auth(), json={
        "definition": _flow(key, "sim ${name}"),
        "events": [{"eventTypeKey": key, "keyValue": "k2",
                    "params": [{"name": "name", "value": "Bo"}]}]})
    assert sim.status_code == 200, sim.text
    assert sim.json()["steps"][0]["detail"] == {"stamp": "sim Bo"}
