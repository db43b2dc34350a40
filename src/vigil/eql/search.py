"""``vigil.eql.search``: run an EQL query over events with Elasticsearch's semantics."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vigil.eql import ast
from vigil.eql.engine import (
    Compiled,
    Match,
    SchemaResolver,
    apply_pipes,
    order_events,
    run_event_query,
    run_sample,
    run_sequence,
)
from vigil.eql.parser import parse


def search(
    query: str | ast.Query,
    events: Iterable[Mapping[str, Any]],
    *,
    timestamp_field: str = "@timestamp",
    tiebreaker_field: str | None = None,
    event_category_field: str = "event.category",
    size: int | None = None,
    mapping: Mapping[str, Any] | None = None,
    max_samples_per_key: int = 1,
    ecs: bool = False,
) -> list[Match]:
    """All matches of ``query`` in ``events``, in Elasticsearch's result order.

    ``events`` are dicts (nested or dotted keys), each optionally carrying ``_index``.
    ``mapping`` is an Elasticsearch index mapping (``{"properties": ...}``) or a dict of them
    keyed by index name, applied per event by its ``_index``. ``size`` caps the number of
    results (None: no cap). ``max_samples_per_key`` is the ``sample`` request parameter.
    ``ecs=True`` first gives the events the view vigil's readers give (``events.jsonl.
    ecs_view``: dotted keys nested, NXLog and raw winlog documents mapped, the logon-id fix),
    so a rule finds through ``search`` what ``vigil detect`` finds in the same documents.
    """
    parsed = parse(query) if isinstance(query, str) else query
    schemas = SchemaResolver(mapping, timestamp_field)
    materialized = events if isinstance(events, list) else list(events)
    if ecs:
        from vigil.events.jsonl import ecs_view  # the readers' room: only when asked

        materialized = ecs_view(materialized)
    schemas.learn(materialized)
    compiled = Compiled(parsed, schemas, event_category_field)
    entries = order_events(materialized, schemas, tiebreaker_field)
    body = parsed.body
    results: list[Match]
    if isinstance(body, ast.Sample):
        results = list(run_sample(compiled, body, entries, max_samples_per_key, size))
    elif isinstance(body, ast.Sequence):
        results = list(run_sequence(compiled, body, entries))
    else:
        results = list(run_event_query(compiled, entries))
    results = apply_pipes(results, parsed.pipes)
    if size is not None:
        results = results[: max(0, size)]
    return results
