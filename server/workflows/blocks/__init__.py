"""Workflow block types: one module each, found and registered when this package loads.

Each module (``timer``, ``email``...) registers a ``BlockType`` (``base``): the name, the
field checks run on save, the edges that leave the block, and ``run``, the step written
once over ``BlockRuntime`` so the engine and the simulator both execute it. Blocks never
touch storage or the network themselves; they ask the runtime.

A new block with no new effect is one module here plus its row in ``docs/workflows.md``
("Adding a block" there says how); nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil

from server.workflows.blocks.base import BlockType, block_type, execute, names

__all__ = ["BlockType", "block_type", "execute", "names"]

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")
