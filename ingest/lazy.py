"""Names a package exports, imported on first use (PEP 562).

Each stage package lists its public surface in ``__all__``; importing the package must stay
cheap (the simulator imports the codec alone, the CLI loads what a command needs), so the
names are resolved from their home modules when first read. Type checkers see them through
the package's ``if TYPE_CHECKING:`` imports.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that finds ``name`` in its home module ``homes[name]``."""

    def find(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(home), name)

    return find


__all__ = ["lazy_exports"]
