"""vigil: Elastic Security EQL detection rules on Windows event logs, without Elasticsearch.

The library in three functions (README "Python API"): ``vigil.read(paths)`` the ECS events,
``vigil.load_rules(paths)`` the rules, ``vigil.detect(paths, rules=...)`` the alert documents.
They are imported on first use, so ``import vigil`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vigil.api import detect, load_rules, read

__version__ = "0.1.0"
__all__ = ["__version__", "detect", "load_rules", "read"]


def __getattr__(name: str) -> Any:
    if name in ("detect", "load_rules", "read"):
        from vigil import api

        return getattr(api, name)
    raise AttributeError(f"module 'vigil' has no attribute {name!r}")
