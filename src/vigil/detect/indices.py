"""Which index an event belongs to, and which rules read it.

A rule's ``index`` patterns (``winlogbeat-*``, ``logs-system.*``, ``logs-windows.*``) decide
what it searches in Elastic. For files, vigil tells an event's index from the data itself:
the index an Elastic export names (``_index``), the data stream fields Elastic Agent writes,
Winlogbeat's agent type, or the Windows channel. An event whose index cannot be told is read
by every rule: it is never silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vigil.eql.patterns import compile_wildcards
from vigil.eql.schema import raw_getter
from vigil.events.ecs import dataset_for

_get_dataset = raw_getter("data_stream.dataset")
_get_type = raw_getter("data_stream.type")
_get_namespace = raw_getter("data_stream.namespace")
_get_agent_type = raw_getter("agent.type")
_get_agent_version = raw_getter("agent.version")
_get_channel = raw_getter("winlog.channel")
_get_module = raw_getter("event.module")
_get_event_dataset = raw_getter("event.dataset")


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) and value else None


def index_of(event: Mapping[str, Any]) -> str | None:
    """The index (or data stream) the event would be in, or None when it cannot be told."""
    explicit = _text(event.get("_index"))
    if explicit:
        return explicit
    dataset = _text(_get_dataset(event))
    if dataset:
        kind = _text(_get_type(event)) or "logs"
        namespace = _text(_get_namespace(event)) or "default"
        return f"{kind}-{dataset}-{namespace}"
    agent = _text(_get_agent_type(event))
    if agent == "winlogbeat":
        return f"winlogbeat-{_text(_get_agent_version(event)) or '8'}"
    channel = _text(_get_channel(event))
    if channel:  # where the Elastic integrations route that channel
        return f"logs-{dataset_for(channel)}-default"
    event_dataset = _text(_get_event_dataset(event))
    if event_dataset and "." in event_dataset:
        return f"logs-{event_dataset}-default"
    return None


class IndexSelector:
    """Does a rule with these index patterns read an event of this index?"""

    def __init__(self, patterns: Sequence[str], *, accept_all: bool = False) -> None:
        self.patterns = tuple(patterns)
        self.accept_all = accept_all or not patterns
        include = [p for p in patterns if not p.startswith("-")]
        exclude = [p[1:] for p in patterns if p.startswith("-")]
        self._include = compile_wildcards(include, case_insensitive=False) if include else None
        self._exclude = compile_wildcards(exclude, case_insensitive=False) if exclude else None
        self._cache: dict[str | None, bool] = {}

    def accepts(self, index: str | None) -> bool:
        if self.accept_all or index is None:
            return True
        known = self._cache.get(index)
        if known is not None:
            return known
        # A remote-cluster pattern ("*:logs-*") also names the local index it covers.
        local = index.split(":", 1)[-1]
        result = (self._include is not None and (self._include(index) or self._include(local))
                  and not (self._exclude is not None and self._exclude(index)))
        self._cache[index] = result
        return result
