"""What every block of a definition must satisfy, over the block registry: a known type,
its type's field checks, well-formed ``${}`` references, and the graph edges.

Checked on save; the engine and the simulator then read blocks as plain dicts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from server.workflows.blocks import block_type, names
from server.workflows.blocks.base import next_edge
from server.workflows.refs import check_refs


def edges(block: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, target id) for every edge leaving ``block``."""
    kind = block_type(block.get("type"))
    return kind.edges(block) if kind is not None else next_edge(block)


def _waits(block: dict[str, Any]) -> bool:
    kind = block_type(block.get("type"))
    return kind is not None and kind.waits


def timerless_cycle(blocks: dict[str, dict[str, Any]]) -> list[str] | None:
    """A loop that never waits (it would spin forever), as a list of ids, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(bid: str) -> list[str] | None:
        state[bid] = 1
        path.append(bid)
        for _f, target in edges(blocks[bid]):
            if target not in blocks or _waits(blocks[target]):
                continue
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[bid] = 2
        path.pop()
        return None

    for bid, block in blocks.items():
        if bid not in state and not _waits(block) and (found := visit(bid)):
            return found
    return None


def _walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _walk_strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _walk_strings(v)


def check_block(block: dict[str, Any], *, where: str, out: list[tuple[str, str]]) -> None:
    bid = block["id"]
    kind = block_type(block.get("type"))

    def say(field: str, reason: str) -> None:
        out.append((f"{where}.{field}", f'block "{bid}": {field} {reason}'
                    if not reason.startswith(field) else f'block "{bid}": {reason}'))

    if kind is None:
        out.append((f"{where}.type", (f'block "{bid}": unknown type {block.get("type")!r}; '
                                      f'use one of {", ".join(names())}')))
        return
    kind.check(block, say)
    if "next" in block and not isinstance(block["next"], str):
        say("next", "must be the id of the next block")
    for field in kind.ref_fields:
        for text in _walk_strings(block.get(field)):
            problem = check_refs(text)
            if problem:
                say(field, f"has a bad reference: {problem}")
                break
