"""vigil: Elastic Security EQL detection rules on Windows event logs, without Elasticsearch."""

from __future__ import annotations

__version__ = "0.1.0"
