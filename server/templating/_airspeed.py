"""A private instance of the airspeed module for our dialect to specialise.

airspeed's parse-tree classes find each other through their module's globals
(``Block`` parses ``Text``, ``IfDirective`` parses ``Block``...). Loading the
installed module a second time under our own name lets the dialect install its
subclasses into that copy's globals, so every parse and render goes through
them, while ``import airspeed`` elsewhere keeps the stock engine untouched.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import airspeed


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "server.templating._airspeed_dialect", airspeed.__file__
    )
    if spec is None or spec.loader is None:
        raise ImportError("cannot locate the airspeed package")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Typed Any: its classes are untyped and serve as base classes of our nodes.
engine: Any = _load()
