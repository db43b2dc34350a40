"""Which EVTX record types can a rule match? Decided from the provider, the event id and the
task alone, before the record is parsed or mapped to ECS.

The ECS mapping (``vigil.events.ecs.to_ecs``) writes some fields from tables only: what it
puts in ``TABLE_FIELDS`` depends on the record's channel, provider and event id (and, for
``event.action``, on its task), never on EventData, UserData, keywords, level or the other
System values. Per (provider, event id, task) and per *channel class* (the channels the
mapping treats alike: Security, System, ..., "any other channel"), the real mapping is run on
a few probe records that share those values and differ in everything else (the task too
when it is not known: ``ANY_TASK``); a table field is *known* when every probe gives it the
same value (or leaves it out in every probe), and every other field is *unknown*.

Each stage of each rule (every stage the engine compiles: positive, missing ``![...]`` and
``until`` stages) is then evaluated in three-valued logic: its category test and every leaf
of its condition whose fields are all known are evaluated exactly as the reference does
(``FilterCompiler.predicate`` on a document holding just those fields, which those
predicates read the same way in the full document), any other leaf is unknown; ``and`` is
false when one operand is, ``or`` when all are, ``not`` flips definite values. A record type
is *relevant* when, for some channel class, some stage of some rule whose index patterns
accept that class's index is not definitely false. An irrelevant record could not match any
stage once mapped, so the fast path's exact stage filter would drop it anyway: skipping it
unparsed changes nothing but the time spent.

``relevant_event`` does the same for one parsed, not yet mapped record of a kept type: with
its exact channel, provider and event id, and its EventData values of DATA_KEYS shared by
every probe, the DATA_FIELDS (derived from those values only, see there) are known too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vigil.detect.indices import IndexSelector
from vigil.eql import ast
from vigil.eql.compiler import FilterCompiler
from vigil.eql.engine import Compiled
from vigil.eql.schema import Schema
from vigil.events.ecs import dataset_for, to_ecs
from vigil.events.evtx import ANY_TASK, named_data
from vigil.events.records import LogonIdMode
from vigil.events.winlog import AUDIT_FAILURE, AUDIT_SUCCESS, WinEvent

__all__ = ["CHANNEL_CLASSES", "DATA_FIELDS", "DATA_KEYS", "MISSING", "TABLE_FIELDS", "EvtxGate", "known_fields",
           "stage_verdict"]

# Fields the mapping derives from (channel, provider, event id[, task]) only: to_ecs and
# base_document write them from those values and constants; the security pipeline writes
# event.category/type/action from its per-event-id table, before and independently of its
# EventData steps (which write other fields). Probing (known_fields) confirms it per type.
TABLE_FIELDS: tuple[str, ...] = (
    "_index", "data_stream.type", "data_stream.dataset", "data_stream.namespace",
    "event.dataset", "event.module", "event.code", "event.kind", "event.provider",
    "event.category", "event.type", "event.action", "winlog.channel", "winlog.event_id",
    "winlog.provider_name", "winlog.api", "host.os.type", "host.os.family", "ecs.version",
)

# Channels the mapping treats alike, each as two spellings it must not tell apart (a class
# where winlog.channel differs between them leaves that field unknown). "Other" stands for
# every channel without a data stream of its own: windows.forwarded, no security pipeline.
CHANNEL_CLASSES: tuple[tuple[str, str], ...] = (
    ("Security", "SECURITY"),
    ("System", "system"),
    ("Application", "APPLICATION"),
    ("Microsoft-Windows-Sysmon/Operational", "microsoft-windows-sysmon/operational"),
    ("Windows PowerShell", "windows powershell"),
    ("Microsoft-Windows-PowerShell/Operational", "microsoft-windows-powershell/operational"),
    ("ForwardedEvents", "Microsoft-Windows-Vigil-Probe/Operational"),
)


# Fields the security pipeline derives from the record type and the EventData values named
# in DATA_KEYS only (security.py): ``winlog.logon.type`` has one writer, ``_logon_type``,
# from LogonType; ``source.ip`` is written by ``_session`` (ClientAddress, "LOCAL" read as
# 127.0.0.1), ``_auth`` (IpAddress unless "-"), ``_connection`` (SourceAddress unless "-"),
# each from its own key (no step writes those keys before they are read: the only writes are
# ``_session``'s of ClientAddress, after its own read, and the pops of the writers
# themselves), and rewritten by ``finish_security`` from its own value (IPv4-mapped form).
# Which of those steps run depends on the event code only. The other pipelines (every record
# not in the Security channel from a SECURITY_PROVIDERS provider: ``base_document`` and the
# logon-id fix) write neither field. Probing (known_fields with ``fixed``) confirms it per
# record kind.
DATA_FIELDS: tuple[str, ...] = ("winlog.logon.type", "source.ip")
DATA_KEYS: frozenset[str] = frozenset({"LogonType", "ClientAddress", "IpAddress",
                                       "SourceAddress"})
_DATA_KEY_ORDER: tuple[str, ...] = tuple(sorted(DATA_KEYS))
# Distinct (record kind, DATA_KEYS values) verdicts kept; past that, new ones are not worked
# out (the record is kept and mapped: always sound), so a log with many addresses costs no
# more than mapping.
MAX_DATA_VERDICTS = 4096
MAX_TYPE_VERDICTS = 4096  # the same for record types (each costs ~0.25 ms of probing)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # a known field that the mapping leaves out

Tri = bool | None  # True, False, or unknown

# EventData names the security pipeline reads, with two different values each.
_DATA_NAMES: tuple[str, ...] = (
    "LogonType", "NewUacValue", "UserAccountControl", "TicketOptions", "TicketEncryptionType",
    "Status", "SubStatus", "ServiceName", "ServiceType", "ServiceFileName", "FailureReason",
    "AccountName", "AccountDomain", "ClientAddress", "ClientName", "LogonID", "TargetUserSid",
    "TargetSid", "TargetUserName", "TargetDomainName", "MemberName", "TargetLogonId",
    "SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "ProcessId",
    "ProcessName", "IpAddress", "IpPort", "WorkstationName", "DestAddress", "SourceAddress",
    "DestPort", "SourcePort", "Protocol", "Application", "NewProcessId", "NewProcessName",
    "ParentProcessName", "CommandLine", "PrivilegeList", "OldTargetUserName",
    "NewTargetUserName", "RelativeTargetName", "ShareLocalPath", "ShareName", "TaskName",
    "EventID", "Channel", "Category", "Action",
)
# The names the other pipelines read (vigil.events.pipelines): Sysmon, PowerShell, AppLocker,
# Defender. Probes of the Security class carry only the security pipeline's names above (it
# reads no others: cheaper probes, the same verdicts); every other class carries all.
_OTHER_NAMES = (
    "UtcTime", "RuleName", "ProcessGuid", "Image", "ParentImage", "ParentCommandLine",
    "ParentProcessGuid", "ParentProcessId", "CurrentDirectory", "OriginalFileName", "Hashes",
    "Hash", "TargetFilename", "ImageLoaded", "Signed", "Signature", "SignatureStatus",
    "SourceIp", "DestinationIp", "SourcePort", "DestinationPort", "SourceHostname",
    "DestinationHostname", "SourcePortName", "DestinationPortName", "Initiated",
    "SourceIsIpv6", "QueryName", "QueryResults", "QueryStatus", "TargetObject", "Details",
    "User", "SourceImage", "SourceProcessGuid", "SourceProcessId", "TargetImage", "Device",
    "PipeName", "Destination", "Type", "ID", "Archived", "IsExecutable", "Company",
    "Description", "Product", "FileVersion", "param1", "param2", "param3", "HostApplication",
    "HostName", "HostId", "HostID", "UserId", "ConnectedUser", "ContextInfo", "Payload",
    "ScriptBlockText", "ScriptBlockId", "ScriptName", "Path", "SequenceNumber",
    "NewEngineState", "PreviousEngineState", "ProviderName", "MessageNumber", "MessageTotal",
)
_SECURITY_NAMES: tuple[str, ...] = _DATA_NAMES
_DATA_NAMES = (*_SECURITY_NAMES, *_OTHER_NAMES)
_DATA_A = {name: "3" for name in _DATA_NAMES} | {
    "IpAddress": "10.0.0.1", "ClientAddress": "LOCAL", "NewUacValue": "0x15",
    "TicketOptions": "0x40810010", "ServiceType": "0x10", "Protocol": "6",
    "MemberName": "CN=a,OU=b,DC=c,DC=d", "CommandLine": 'a "b c" d', "Status": "0xc000006d",
    "UtcTime": "2024-06-01 12:00:00.123", "SourceIp": "10.0.0.2", "DestinationIp": "::1",
    "Hashes": "SHA1=AB,MD5=CD,IMPHASH=EF", "TargetObject": "HKLM\\a\\b", "Details": "DWORD (0x00000001)",
    "User": "D\\u", "UserId": "D\\u", "ConnectedUser": "D\\v", "Signed": "true",
    "QueryResults": "type:  5 a.b;::ffff:10.0.0.4;", "Initiated": "true", "SourceIsIpv6": "false",
    "Image": "C:\\p\\q.exe", "TargetFilename": "C:\\f\\g.txt",
    "param2": "\tDetailSequence=1\n\tUserId=D\\u", "param3": "\tHostName=h\n\tHostId=i",
    "ContextInfo": "        Host Name = h\n        User = D\\u", "ScriptName": "C:\\s\\t.ps1"}
_DATA_B = {name: "-" for name in _DATA_NAMES} | {
    "LogonType": "10", "ProcessId": "0x1f4", "NewProcessName": "C:\\x\\y.exe",
    "Application": "\\device\\z.exe", "IpAddress": "::ffff:10.1.2.3", "Status": "0x0"}


def _probes(channel_class: tuple[str, str], provider: str, event_id: int,
            fixed: Mapping[str, str] | None = None,
            task: int | None = ANY_TASK) -> Iterable[WinEvent]:
    """Records of one type that differ in everything the table fields must not depend on
    (and, with ``fixed``, share those EventData values: the DATA_KEYS of one record); with a
    ``task`` (None: no task), all have that task, else the task differs too."""
    first, second = channel_class
    keep = dict(fixed or {})
    rest_a, rest_b = _rest_for(first, second)
    tasks = (None, 0, 12544) if task == ANY_TASK else (task, task, task)
    # Fresh dicts each time: the mapping may consume the records it is given.
    yield WinEvent("2000-01-01T00:00:00.000Z", event_id, provider, first, "", task=tasks[0],
                   event_data=dict(keep) or None)
    yield WinEvent("2024-06-01T12:00:00.123Z", event_id, provider, second, "probe-a",
                   record_id=1, provider_guid="{0}", version=1, level=4, task=tasks[1],
                   opcode=0,
                   keywords=AUDIT_SUCCESS | 0x80000000000000, activity_id="{1}",
                   process_id=4, thread_id=8, user_sid="S-1-5-18",
                   event_data=rest_a | keep,
                   user_data={"xml_name": "LogFileCleared", "SubjectUserName": "u",
                              "SubjectLogonId": "0x1"})
    yield WinEvent("2024-06-01T12:00:00.456Z", event_id, provider, first, "probe-b",
                   record_id=2, version=2, level=2, task=tasks[2], opcode=1,
                   keywords=AUDIT_FAILURE, event_data=rest_b | keep)


# The probes' EventData without DATA_KEYS (``fixed`` supplies those, or nothing does).
_DATA_A_REST = {k: v for k, v in _DATA_A.items() if k not in DATA_KEYS}
_DATA_B_REST = {k: v for k, v in _DATA_B.items() if k not in DATA_KEYS}
_SECURITY_A = {k: v for k, v in _DATA_A_REST.items() if k in _SECURITY_NAMES}
_SECURITY_B = {k: v for k, v in _DATA_B_REST.items() if k in _SECURITY_NAMES}


def _rest_for(first: str, second: str) -> tuple[dict[str, str], dict[str, str]]:
    """The probes' EventData for a class: only the names the security pipeline reads where
    both spellings route to it (its steps read nothing else), every name otherwise."""
    if dataset_for(first) == dataset_for(second) == "system.security":
        return _SECURITY_A, _SECURITY_B
    return _DATA_A_REST, _DATA_B_REST


def _path_tree(paths: Iterable[str]) -> dict[str, Any]:
    """Dotted paths as nested dicts ({} marks a path's end; no path is another's prefix)."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
        assert not node, path
    return tree


_TABLE_TREE = _path_tree(TABLE_FIELDS)
_DATA_TREE = _path_tree(TABLE_FIELDS + DATA_FIELDS)


def _agreeing(tree: Mapping[str, Any], a: Any, b: Any, c: Any, prefix: str,
              known: dict[str, Any]) -> None:
    """Into ``known``: each path of ``tree`` whose value (MISSING where a document lacks it
    or a step is not an object) is the same, of the same type, in the three probe documents
    (or their nodes at ``prefix``). Three named arguments, not a list: this runs 20-odd
    times for each record type a run meets."""
    a_dict, b_dict, c_dict = type(a) is dict, type(b) is dict, type(c) is dict
    for name, below in tree.items():
        x = a.get(name, MISSING) if a_dict else MISSING
        y = b.get(name, MISSING) if b_dict else MISSING
        z = c.get(name, MISSING) if c_dict else MISSING
        if below:
            _agreeing(below, x, y, z, f"{prefix}{name}.", known)
        elif x == y and x == z and type(x) is type(y) and type(x) is type(z):
            known[prefix + name] = x


def known_fields(channel_class: tuple[str, str], provider: str, event_id: int,
                 logon_id: LogonIdMode = "intended",
                 fixed: Mapping[str, str] | None = None,
                 task: int | None = ANY_TASK) -> dict[str, Any]:
    """The table fields with the same value (or MISSING) in every probe of the type; with
    ``fixed`` (values of DATA_KEYS, absent ones left out), the DATA_FIELDS too; with a
    ``task``, for records of that task (event.action comes from it)."""
    first, second, third = [to_ecs(probe, logon_id) for probe in
                            _probes(channel_class, provider, event_id, fixed, task)]
    known: dict[str, Any] = {}
    _agreeing(_TABLE_TREE if fixed is None else _DATA_TREE, first, second, third, "", known)
    return known


def _document(known: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """A document holding the named known fields (nested, as the mapping nests them)."""
    doc: dict[str, Any] = {}
    for name in names:
        value = known.get(name, MISSING)
        if value is MISSING:
            continue
        *parents, last = name.split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return doc


@dataclass(slots=True)
class _Leaf:
    names: frozenset[str]  # the fields it reads
    predicate: Callable[[Mapping[str, Any]], bool]


class _StageEvaluator:
    """Three-valued evaluation of one compiled query's stages (leaves compiled once)."""

    def __init__(self, compiled: Compiled, schema: Schema) -> None:
        self.compiled = compiled
        self.schema = schema
        self.compiler = FilterCompiler(schema, compiled.query.text)
        self.leaves: dict[int, _Leaf] = {}
        self.get_category = schema.getter(compiled.category_field)

    def leaf(self, node: ast.Expr) -> _Leaf:
        found = self.leaves.get(id(node))
        if found is None:
            names: set[str] = set()
            for part in ast.walk(node):
                if isinstance(part, ast.Field) and not self.compiler.is_null_field(part):
                    names.add(part.name)
                elif isinstance(part, ast.FieldPattern):
                    names.add("\0 any field")  # reads fields no record type knows
            found = _Leaf(frozenset(names), self.compiler.predicate(node))
            self.leaves[id(node)] = found
        return found

    def condition(self, node: ast.Expr, known: Mapping[str, Any]) -> Tri:
        match node:
            case ast.And(operands=operands) | ast.Or(operands=operands):
                decisive = isinstance(node, ast.Or)  # the value that decides: and False, or True
                result: Tri = not decisive
                for operand in operands:
                    value = self.condition(operand, known)
                    if value is decisive:
                        return decisive
                    if value is None:
                        result = None
                return result
            case ast.Not(operand=operand):
                value = self.condition(operand, known)
                return None if value is None else not value
        leaf = self.leaf(node)
        if not leaf.names <= known.keys():
            return None
        try:
            return bool(leaf.predicate(_document(known, leaf.names)))
        except Exception:  # whatever the reference would do with it: not decided here
            return None

    def stage(self, query: ast.EventQuery, known: Mapping[str, Any]) -> Tri:
        category_known: Tri = True
        if query.category is not None:
            field = self.compiled.category_field
            if field in known:
                value = self.get_category(_document(known, (field,)))
                if value != query.category and not (isinstance(value, list)
                                                     and query.category in value):
                    return False
            else:
                category_known = None
        verdict = self.condition(query.condition, known)
        if verdict is False:
            return False
        return True if verdict is True and category_known else None


def stage_verdict(compiled: Compiled, query: ast.EventQuery, known: Mapping[str, Any]) -> Tri:
    """Does an event whose known fields are ``known`` match ``query`` (a stage of
    ``compiled``)? True/False when the known fields decide it, None otherwise."""
    skeleton = _document(known, known.keys())
    return _StageEvaluator(compiled, compiled.schemas.for_event(skeleton)).stage(query, known)


class EvtxGate:
    """``relevant(provider, event_id, task)``: may a record of that type match a stage of
    one of the rules (compiled queries with their index selectors), whatever its channel?"""

    def __init__(self, rules: Sequence[tuple[Compiled, IndexSelector]], *,
                 index_all: bool = False, logon_id: LogonIdMode = "intended") -> None:
        self.rules = list(rules)
        self.index_all = index_all
        self.logon_id = logon_id
        self._evaluators: dict[tuple[int, int], _StageEvaluator] = {}
        self._cache: dict[tuple[str, int, int | None], bool] = {}
        self._class_cache: dict[tuple[str, str], bool] = {}
        self._data_cache: dict[tuple[str, str, int, int | None, tuple[str | None, ...]],
                               bool] = {}

    def decides_nothing(self) -> bool:
        """Does some stage match records of every type and any EventData alike? A stage of
        any category whose condition reads none of the fields the gates know (TABLE_FIELDS,
        DATA_FIELDS) has the same verdict for every record; when that verdict is not false,
        for a rule that reads every channel class's index, every record is relevant and the
        gates would only cost time (e.g. ``any where process.name == ...`` on
        ``logs-windows.*``, ``logs-system.*``)."""
        knowable = set(TABLE_FIELDS) | set(DATA_FIELDS)
        indexes = [known_fields(channel_class, "Vigil-Probe", 0, self.logon_id).get("_index")
                   for channel_class in CHANNEL_CLASSES]
        for compiled, selector in self.rules:
            if not self.index_all and not all(isinstance(index, str) and selector.accepts(index)
                                               for index in indexes):
                continue
            evaluator = _StageEvaluator(compiled, compiled.schemas.default)
            for query, _keys in compiled.stage_nodes:
                if query.category is not None:
                    continue
                read = {part.name for part in ast.walk(query.condition)
                        if isinstance(part, ast.Field)}
                if not read & knowable and evaluator.stage(query, {}) is not False:
                    return True
        return False

    def relevant(self, provider: str, event_id: int, task: int | None = ANY_TASK) -> bool:
        key = (provider, event_id, task)
        verdict = self._cache.get(key)
        if verdict is None:
            if len(self._cache) >= MAX_TYPE_VERDICTS:
                return True  # hostile input (a provider name per record): keep, never probe
            verdict = any(self.relevant_in(channel_class, provider, event_id, task)
                          for channel_class in CHANNEL_CLASSES)
            self._cache[key] = verdict
        return verdict

    def relevant_event(self, channel: str, provider: str, event_id: int,
                       section: Any, task: int | None = ANY_TASK) -> bool:
        """May a record (parsed, not mapped) with this channel, provider, event id and
        EventData section (as parsed) match a stage of one of the rules?

        Decided from the record's kind and the EventData values of DATA_KEYS (exactly as
        ``event_data_of`` keeps them), on the fields those decide (TABLE_FIELDS and
        DATA_FIELDS), as ``relevant`` decides on the table fields: probes of that channel,
        provider and id sharing those values, differing in everything else, must agree on a
        field for it to count as known. A record it rejects maps to a document no stage
        matches."""
        data = named_data(section, _DATA_KEY_ORDER)
        key = (channel, provider, event_id, task,
               tuple(data.get(name) for name in _DATA_KEY_ORDER))
        verdict = self._data_cache.get(key)
        if verdict is None:
            if len(self._data_cache) >= MAX_DATA_VERDICTS:
                return True
            verdict = self._data_cache[key] = self._relevant_known(known_fields(
                (channel, channel), provider, event_id, self.logon_id, data, task))
        return verdict

    def relevant_in(self, channel_class: tuple[str, str], provider: str, event_id: int,
                    task: int | None = ANY_TASK) -> bool:
        if not self._class_read(channel_class):
            return False  # no rule reads the class's index: what probing would conclude
        return self._relevant_known(known_fields(channel_class, provider, event_id,
                                                 self.logon_id, task=task))

    def _class_read(self, channel_class: tuple[str, str]) -> bool:
        """Does some rule read the index of the class's channels? The index comes from the
        channel alone (``events.ecs.finish``: ``logs-<dataset_for(channel)>-default``), the
        same for both spellings of a class, so ``_relevant_known`` would skip every rule of
        a class no selector accepts."""
        if self.index_all:
            return True
        known = self._class_cache.get(channel_class)
        if known is None:
            indexes = {f"logs-{dataset_for(channel)}-default" for channel in channel_class}
            known = self._class_cache[channel_class] = len(indexes) > 1 or any(
                selector.accepts(index) for _compiled, selector in self.rules
                for index in indexes)
        return known

    def _relevant_known(self, known: Mapping[str, Any]) -> bool:
        skeleton = _document(known, known.keys())
        index = known.get("_index", MISSING)
        for number, (compiled, selector) in enumerate(self.rules):
            if not self.index_all and not (index is MISSING or not isinstance(index, str)
                                           or selector.accepts(index)):
                continue
            schema = compiled.schemas.for_event(skeleton)
            evaluator = self._evaluators.get((number, id(schema)))
            if evaluator is None:
                evaluator = self._evaluators[(number, id(schema))] = _StageEvaluator(compiled,
                                                                                     schema)
            for query, _keys in compiled.stage_nodes:
                if evaluator.stage(query, known) is not False:
                    return True
        return False
