"""Deterministic identities: of events (their ``_id``/``_index``), rules and alerts.

Alert ids follow Kibana's recipes (ELASTIC_ENGINE.md §3.4) so that re-running on the same
data yields the same ids, overlapping windows never duplicate, and ids differ across rules:

* building block i of a sequence: ``sha256(concat(e._id + e._index + R for each event) + i)``
* the shell: ``sha256(concat(e_i._id + e_i._index + BB_i + "") + R)``
* a single-event alert: ``sha256(e._index + e._id + version + R)`` (Kibana ``generateId``)

where R is the rule's saved-object id. A rule loaded from a file has no saved object, so vigil
derives R from the rule_id (a UUIDv5), stable across runs and machines.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

# Namespace for rule saved-object ids that vigil derives from rule_ids.
_RULE_NAMESPACE = uuid.UUID("2c1b6e0c-3c1e-5a55-9a51-7669676c0001")


def rule_uuid(rule_id: str, explicit: str | None = None) -> str:
    """The rule's saved-object id: Kibana's when known, else derived from the rule_id."""
    return explicit or str(uuid.uuid5(_RULE_NAMESPACE, rule_id))


def event_id(event: Mapping[str, Any]) -> str:
    """The event's ``_id``: as exported by Elasticsearch, else a hash of its content (20
    base64url characters, the length of an Elasticsearch auto id)."""
    given = event.get("_id")
    if isinstance(given, str) and given:
        return given
    body = {k: v for k, v in event.items() if k not in ("_id", "_index", "vigil")}
    source = event.get("vigil", {}).get("source") if isinstance(event.get("vigil"), dict) \
        else None
    log = body.get("log")
    if isinstance(source, dict) and isinstance(log, dict) and isinstance(log.get("file"), dict) \
            and log["file"].get("path") == source.get("path"):
        # The path vigil added: where the event was read is not what the event is.
        file = {k: v for k, v in log["file"].items() if k != "path"}
        log = {k: v for k, v in log.items() if k != "file"} | ({"file": file} if file else {})
        body["log"] = log
        if not log:
            del body["log"]
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=str))
    return base64.urlsafe_b64encode(digest.digest()[:15]).decode("ascii")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def building_block_ids(refs: Sequence[tuple[str, str]], rule: str) -> list[str]:
    """Ids of a sequence's building-block alerts; ``refs`` are (``_id``, ``_index``) pairs."""
    base = "".join(f"{doc_id}{index}{rule}" for doc_id, index in refs)
    return [_sha256(f"{base}{i}") for i in range(len(refs))]


def shell_id(refs: Sequence[tuple[str, str]], block_ids: Sequence[str], rule: str) -> str:
    parts = "".join(f"{doc_id}{index}{block}" for (doc_id, index), block in
                    zip(refs, block_ids, strict=True))
    return _sha256(f"{parts}{rule}")


def single_alert_id(ref: tuple[str, str], rule: str, version: str = "1") -> str:
    doc_id, index = ref
    return _sha256(f"{index}{doc_id}{version}{rule}")


# Kibana's namespace for threshold bucket ids (threshold/utils.ts calculateThresholdSignalUuid).
_THRESHOLD_NAMESPACE = uuid.UUID("0684ec03-7201-4ee0-8ee0-3a3f6b2479b2")


def threshold_bucket_id(rule_id: str, started_at: str, fields: Sequence[str],
                        values: Sequence[Any]) -> str:
    """The id of a threshold bucket's synthetic hit: uuid v5 of the rule_id, the run's start
    (ISO, milliseconds), the group-by fields joined by "," and the bucket's values sorted as
    JavaScript sorts (as text) and joined by ",", concatenated without separators."""
    key = ",".join(sorted(js_string(v) for v in values))
    return str(uuid.uuid5(_THRESHOLD_NAMESPACE, f"{rule_id}{started_at}{','.join(fields)}{key}"))


def js_string(value: Any) -> str:
    """JavaScript's String() of a JSON scalar, which is also how Elasticsearch indexes one
    in a keyword field (``1.0`` and ``1`` are one number: ``"1"``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def object_hash(value: Any) -> str:
    """npm ``object-hash`` 3 with its defaults (SHA-1, hex) for JSON values, as Kibana's
    ``objectHash`` hashes new-terms and suppression ids (``_ObjectHasher`` writes the text)."""
    out: list[str] = []
    _ObjectHasher(out).dispatch(value)
    return hashlib.sha1("".join(out).encode("utf-8")).hexdigest()


_PROTOTYPE = object()  # Object.prototype
_CONSTRUCTOR = object()  # the Object function


class _ObjectHasher:
    """object-hash's ``typeHasher`` for JSON values: ``array:N:`` and the elements;
    ``object:N:`` and ``key:value,`` per key, sorted (``unorderedObjects``), after the three
    ``respectType`` keys ``prototype``, ``__proto__`` and ``constructor`` (whose values are
    Object.prototype and the Object function, written in full the first time and as
    ``[CIRCULAR:i]`` after: ``i`` is their place among the objects visited so far);
    ``string:LENGTH:TEXT`` (UTF-16 code units), ``number:N``, ``bool:B``, ``Null``."""

    def __init__(self, out: list[str]) -> None:
        self.out = out
        self.context: list[int] = []  # ids of the objects visited, in order

    def seen(self, thing: object) -> bool:
        key = id(thing)
        if key in self.context:
            self.dispatch(f"[CIRCULAR:{self.context.index(key)}]")
            return True
        self.context.append(key)
        return False

    def dispatch(self, value: Any) -> None:
        write = self.out.append
        if value is None:
            write("Null")
        elif isinstance(value, bool):
            write(f"bool:{'true' if value else 'false'}")
        elif isinstance(value, int | float):
            write(f"number:{js_string(value)}")
        elif isinstance(value, str):
            write(f"string:{len(value.encode('utf-16-le')) // 2}:{value}")
        elif isinstance(value, list | tuple):
            if self.seen(value):
                return
            write(f"array:{len(value)}:")
            for item in value:
                self.dispatch(item)
        elif isinstance(value, Mapping):
            if self.seen(value):
                return
            self.plain_object([(str(k), value[k]) for k in sorted(value)])
        else:
            self.dispatch(str(value))

    def plain_object(self, items: list[tuple[str, Any]]) -> None:
        write = self.out.append
        write(f"object:{len(items) + 3}:")
        self.dispatch("prototype")
        write(":Undefined,")
        self.dispatch("__proto__")
        write(":")
        if not self.seen(_PROTOTYPE):
            write("object:3:")
            self.dispatch("prototype")
            write(":Undefined,")
            self.dispatch("__proto__")
            write(":Null,")
            self.dispatch("constructor")
            write(":")
            self.constructor()
            write(",")
        write(",")
        self.dispatch("constructor")
        write(":")
        self.constructor()
        write(",")
        for key, item in items:
            self.dispatch(key)
            write(":")
            self.dispatch(item)
            write(",")

    def constructor(self) -> None:
        self.out.append("fn:")
        self.dispatch("[native]")
        self.dispatch("function-name:Object")
        if not self.seen(_CONSTRUCTOR):
            self.out.append("object:0:")


def new_terms_alert_id(ref: tuple[str, str], rule: str, new_terms: Sequence[Any],
                       version: str = "1") -> str:
    """wrap_new_terms_alerts.ts: objectHash([_index, _id, String(_version),
    "space:rule uuid", new terms])."""
    doc_id, index = ref
    return object_hash([index, doc_id, version, rule, list(new_terms)])
