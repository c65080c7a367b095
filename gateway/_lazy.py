"""Lazy package exports (PEP 562): a package names its objects without importing their modules.

Used where importing the package must stay cheap or apart: the `ketenpoort` command tree
builds its `--help` without SQLAlchemy, and the standalone audit verifier without the writer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, modules: Mapping[str, tuple[str, ...]]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package` that imports each name's module on first use.

    `modules` maps a module path to the names the package takes from it.
    """
    where = {name: module for module, names in modules.items() for name in names}

    def getattr_(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(module), name)

    return getattr_
