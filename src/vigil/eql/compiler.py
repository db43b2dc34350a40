"""Expressions -> Python closures with Elasticsearch's semantics (the reference evaluator).

Elasticsearch runs an EQL filter as a Lucene query: a field compared with constants becomes a
``term``/``range``/``wildcard``/``regexp``/``terms`` query, anything else (functions,
arithmetic) a script query. Both kinds agree on what matters here (read from
x-pack/plugin/eql ``QueryTranslator`` and ql ``ExpressionTranslators``/``Scripts``):

* a predicate on a field matches when *any* of the field's values satisfies it;
* a missing field satisfies nothing, so ``not P`` (a ``must_not``; in scripts the ``not`` is
  hoisted outside the multi-value loop) matches an event that lacks the field: ``f != "x"``,
  ``not f : "x"`` and ``f not in (...)`` all match events without ``f``;
* inside one script, logic is three-valued (null propagates) and a null result does not match;
  ``x == null`` / ``x != null`` are null checks, never null themselves.

``FilterCompiler.predicate`` is the query side; ``FilterCompiler.value`` the script side, which
evaluates on a *row*: the values of the fields the script reads, one value per field.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable, Mapping
from typing import Any

from vigil.eql import ast
from vigil.eql import functions as fn
from vigil.eql.patterns import (
    compile_pieces,
    compile_regexes,
    compile_wildcards,
    fold,
    has_wildcards,
)
from vigil.eql.schema import (
    DATE_TYPES,
    FLOAT_TYPES,
    INTEGER_TYPES,
    STRING_TYPES,
    Schema,
    converter,
    field_names,
    normalize_ip,
    version_key,
)
from vigil.errors import EqlSemanticError
from vigil.kql.analysis import analyze, contains_phrase

Event = Mapping[str, Any]
Predicate = Callable[[Event], bool]
ValueFn = Callable[[Event], Any]
Test = Callable[[Any], bool]  # a test on one scalar value


def _values(value: Any) -> list[Any] | tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return value
    return (value,)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ------------------------------------------------------------------ typed comparisons


def _ip_key(value: Any) -> Any:
    """An address as Elasticsearch orders ip values (IPv4 as IPv4-mapped IPv6)."""
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return (1, str(value))
    if isinstance(address, ipaddress.IPv4Address):
        address = ipaddress.IPv6Address(f"::ffff:{address}")
    return (0, int(address))


def _ordering_key(field_type: str | None) -> Callable[[Any], Any] | None:
    if field_type == "ip":
        return _ip_key
    if field_type == "version":
        def key(value: Any) -> Any:
            parsed = version_key(str(value))
            return (1, parsed) if parsed is not None else (2, str(value))
        return key
    return None


def literal_for_type(value: Any, field_type: str | None, schema: Schema,
                     field_name: str) -> Any:
    """A query constant as Elasticsearch would parse it against a field of this type."""
    if value is None or field_type is None:
        return value
    field = schema.field_def(field_name)
    if field is None:
        from vigil.eql.schema import FieldDef
        field = FieldDef(field_type)
    convert = converter(field)
    if convert is None:
        return value
    if field_type in DATE_TYPES and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip()) * 1_000_000
    if field_type in INTEGER_TYPES | FLOAT_TYPES and _is_number(value):
        return value  # a range bound such as 3.1 on a long field is compared as a number
    return convert(value)


class _Untyped:
    """Comparison of a JSON value with a constant, the way dynamic mapping would index it:
    a string value is a keyword (the constant is compared as text), a number is numeric."""

    @staticmethod
    def coerce(value: Any, literal: Any) -> Any:
        if isinstance(value, str):
            return literal if isinstance(literal, str) else fn.java_string(literal)
        if isinstance(value, bool):
            if isinstance(literal, bool):
                return literal
            if literal in ("true", "false"):
                return literal == "true"
            return _NO_MATCH
        if _is_number(value):
            if _is_number(literal):
                return literal
            if isinstance(literal, str):
                try:
                    return float(literal) if any(c in literal for c in ".eE") else int(literal)
                except ValueError:
                    return _NO_MATCH
            return _NO_MATCH
        return literal


_NO_MATCH = object()


def make_scalar_test(op: str, literal: Any, field_type: str | None, typed: bool) -> Test:
    """A test ``value OP literal`` for one scalar value of a field."""
    key = _ordering_key(field_type)
    if field_type == "ip" and isinstance(literal, str):
        literal = normalize_ip(literal) or literal

    if typed:
        if literal is None:
            return lambda _v: False
        if key is not None:
            lit_key = key(literal)
            if op == "==":
                return lambda v: bool(v == literal)
            return _ordering_test(op, lambda v: key(v), lit_key)
        return _ordering_test(op, lambda v: v, literal)

    def untyped(value: Any) -> bool:
        coerced = _Untyped.coerce(value, literal)
        if coerced is _NO_MATCH:
            return False
        try:
            return _compare(op, value, coerced)
        except TypeError:
            return False

    return untyped


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def _ordering_test(op: str, key: Callable[[Any], Any], literal: Any) -> Test:
    def test(value: Any) -> bool:
        try:
            return _compare(op, key(value), literal)
        except TypeError:
            return False

    return test


def _script_compare(op: str, left: Any, right: Any) -> bool | None:
    """Elasticsearch's script comparison: null with null-propagation, numbers across types."""
    if left is None or right is None:
        return None
    if op == "!=":
        result = _script_compare("==", left, right)
        return None if result is None else not result
    if (_is_number(left) and _is_number(right)) or type(left) is type(right):
        try:
            return _compare(op, left, right)
        except TypeError:
            return None
    if (isinstance(left, str) and _is_number(right)) or (isinstance(right, str) and _is_number(left)):
        # A keyword doc value compared with a number: compare as text, as the script would
        # after Elasticsearch's implicit conversion of the constant.
        return _compare(op, fn.java_string(left), fn.java_string(right))
    return None


# ------------------------------------------------------------------ the compiler


class FilterCompiler:
    """Compiles the expressions of one query against one schema (one index's mapping)."""

    def __init__(self, schema: Schema, text: str = "") -> None:
        self.schema = schema
        self.text = text

    def error(self, reason: str, node: Any) -> EqlSemanticError:
        span = getattr(node, "span", None)
        if span is None:
            return EqlSemanticError(reason, self.text)
        return EqlSemanticError(reason, self.text, span.line, span.column,
                                max(1, span.end - span.start))

    # -------------------------------------------------------------- field helpers

    def field_type(self, field: ast.Field) -> str | None:
        return self.schema.field_type(field.name)

    def is_null_field(self, node: ast.Expr) -> bool:
        """An optional field that the mapping lacks is the constant null."""
        return (isinstance(node, ast.Field) and node.optional and self.schema.closed
                and not self.schema.is_mapped(node.name))

    def getter(self, field: ast.Field) -> ValueFn:
        if self.is_null_field(field):
            return lambda _e: None
        return self.schema.getter(field.name)

    def foldable(self, node: ast.Expr) -> bool:
        return all(
            not isinstance(n, ast.Field) or self.is_null_field(n) for n in ast.walk(node)
        )

    def constant(self, node: ast.Expr) -> Any:
        return self.value(node)({})

    def _field_and_constant(self, left: ast.Expr, right: ast.Expr) -> tuple[ast.Field, Any] | None:
        if isinstance(left, ast.Field) and not self.is_null_field(left) and self.foldable(right):
            return left, self.constant(right)
        return None

    # -------------------------------------------------------------- query semantics

    def predicate(self, node: ast.Expr) -> Predicate:
        """The filter as Elasticsearch applies it: True when the event matches."""
        match node:
            case ast.And(operands=ops):
                preds = [self.predicate(o) for o in ops]
                return lambda e: all(p(e) for p in preds)
            case ast.Or(operands=ops):
                preds = [self.predicate(o) for o in ops]
                return lambda e: any(p(e) for p in preds)
            case ast.Not(operand=inner):
                positive = self.predicate(inner)
                return lambda e: not positive(e)
        query = self.leaf_query(node)
        if query is not None:
            return query
        return self.script_query(node)

    def script_query(self, node: ast.Expr) -> Predicate:
        """A script filter: true if some combination of the fields' values makes it true."""
        script = self.value(node)
        names = list(dict.fromkeys(
            n.name for n in ast.walk(node) if isinstance(n, ast.Field) and not self.is_null_field(n)
        ))
        getters = [(name, self.schema.getter(name)) for name in names]

        def matches(event: Event) -> bool:
            row = {name: get(event) for name, get in getters}
            multi = [name for name, v in row.items() if isinstance(v, list)]
            if not multi:
                return script(row) is True
            for combo in itertools.product(*(row[name] for name in multi)):
                row.update(zip(multi, combo, strict=True))
                if script(row) is True:
                    return True
            return False

        return matches

    def leaf_query(self, node: ast.Expr) -> Predicate | None:
        """A Lucene-query leaf (field against constants), or None if it must be a script."""
        match node:
            case ast.Literal(value=v):
                result = v is True
                return lambda _e: result
            case ast.Comparison(op=compare_op, left=left, right=right):
                op: str = compare_op
                pair = self._field_and_constant(left, right)
                flipped = False
                if pair is None:
                    pair = self._field_and_constant(right, left)
                    flipped = True
                if pair is None:
                    return None
                field, constant = pair
                if flipped:
                    op = _FLIP[op]
                return self.comparison_query(field, op, constant)
            case ast.Match(value=ast.Field() as field) if not self.is_null_field(field):
                return self.match_query(node, field)
            case ast.TextMatch(value=field):
                return text_query(node, self.getter(field))
            case ast.FieldPattern():
                return self.field_pattern_query(node)
            case ast.InSet(value=ast.Field() as field, options=options) if (
                not self.is_null_field(field) and all(self.foldable(o) for o in options)
            ):
                query = self.in_query(field, [self.constant(o) for o in options],
                                      node.case_insensitive)
                if node.negated:
                    return lambda e: not query(e)
                return query
        return None

    def field_pattern_query(self, node: ast.FieldPattern) -> Predicate:
        """KQL's ``name*: value``: the value's query on each field whose name matches."""
        from vigil.kql.lower import Lowering
        from vigil.kql.syntax import Value

        name_matches = compile_pieces(node.name)
        value = Value(node.text, node.quoted, node.pieces)
        per_field: dict[str, Predicate] = {}

        def matches(event: Event) -> bool:
            for name in field_names(event):
                if not name_matches(name):
                    continue
                predicate = per_field.get(name)
                if predicate is None:
                    if len(per_field) >= 4096:  # hostile input: a field name per event
                        per_field.clear()
                    expr = Lowering("").is_(ast.Field(name), value, ast.NO_SPAN)
                    predicate = per_field[name] = self.predicate(expr)
                if predicate(event):
                    return True
            return False

        return matches

    def comparison_query(self, field: ast.Field, op: str, constant: Any) -> Predicate:
        get = self.getter(field)
        if constant is None:
            if op == "==":
                return lambda e: get(e) is None
            if op == "!=":
                return lambda e: get(e) is not None
            return lambda _e: False
        field_type = self.field_type(field)
        typed = field_type is not None
        literal = literal_for_type(constant, field_type, self.schema, field.name) if typed else constant
        if typed and literal is None:
            # The constant cannot be a value of this field (e.g. "abc" against a long).
            literal = _NO_MATCH
        test = make_scalar_test("==" if op == "!=" else op, literal, field_type, typed)

        matches = _any_value(get, test, when_missing=False)
        if op == "!=":
            return lambda e: not matches(e)
        return matches

    def match_query(self, node: ast.Match, field: ast.Field) -> Predicate:
        get = self.getter(field)
        constants = [p.value for p in node.patterns]
        field_type = self.field_type(field)
        if node.kind == ":":
            strings = [c for c in constants if isinstance(c, str)]
            others = [c for c in constants if c is not None and not isinstance(c, str)]
            has_null = any(c is None for c in constants)
            if field_type is not None and field_type not in STRING_TYPES and field_type != "version":
                # ':' on a non-text field is plain equality with the parsed constant.
                eq = self.in_query(field, constants, False)
                return eq
            text_test: Test | None = None
            if strings:
                wild = [s for s in strings if has_wildcards(s)]
                exact = {fold(s) for s in strings if not has_wildcards(s)}
                wild_test = compile_wildcards(wild, case_insensitive=True) if wild else None

                def text_test(value: str) -> bool:
                    if fold(value) in exact:
                        return True
                    return wild_test is not None and wild_test(value)

            other_tests = [make_scalar_test("==", c, field_type, field_type is not None)
                           for c in others]

            def scalar(value: Any) -> bool:
                if text_test is not None and text_test(
                    value if isinstance(value, str) else fn.java_string(value)
                ):
                    return True
                return any(t(value) for t in other_tests)

        elif node.kind == "like":
            test = compile_wildcards([str(c) for c in constants],
                                     case_insensitive=node.case_insensitive)
            has_null = False

            def scalar(value: Any) -> bool:
                return test(value if isinstance(value, str) else fn.java_string(value))

        else:
            try:
                regex = compile_regexes([str(c) for c in constants],
                                        case_insensitive=node.case_insensitive)
            except EqlSemanticError as exc:
                raise self.error(exc.reason, node) from exc
            has_null = False

            def scalar(value: Any) -> bool:
                return regex(value if isinstance(value, str) else fn.java_string(value))

        return _any_value(get, scalar, when_missing=has_null)

    def in_query(self, field: ast.Field, constants: list[Any], insensitive: bool) -> Predicate:
        get = self.getter(field)
        field_type = self.field_type(field)
        typed = field_type is not None
        has_null = any(c is None for c in constants)
        values = [c for c in constants if c is not None]
        if insensitive:
            folded = {fold(c) if isinstance(c, str) else c for c in values}
            tests: list[Test] = [
                lambda v: (fold(v) if isinstance(v, str) else fn.java_string(v).lower()) in folded
            ]
        elif typed and field_type in STRING_TYPES:
            exact = {fn.java_string(c) for c in values}
            tests = [lambda v: v in exact]
        else:
            tests = []
            for constant in values:
                literal = (literal_for_type(constant, field_type, self.schema, field.name)
                           if typed else constant)
                if typed and literal is None:
                    continue
                tests.append(make_scalar_test("==", literal, field_type, typed))

        def scalar(value: Any) -> bool:
            return any(t(value) for t in tests)

        return _any_value(get, scalar, when_missing=has_null)

    # -------------------------------------------------------------- script semantics

    def value(self, node: ast.Expr) -> ValueFn:
        """The expression's value with three-valued logic (None is null)."""
        match node:
            case ast.Literal(value=v):
                return lambda _e: v
            case ast.Field() as field:
                if self.is_null_field(field):
                    return lambda _row: None
                name = field.name
                return lambda row: row.get(name)
            case ast.Not(operand=inner):
                inner_fn = self.value(inner)

                def not_(e: Event) -> Any:
                    result = inner_fn(e)
                    return None if result is None else not result

                return not_
            case ast.And(operands=ops):
                fns = [self.value(o) for o in ops]
                return lambda e: _and3([f(e) for f in fns])
            case ast.Or(operands=ops):
                fns = [self.value(o) for o in ops]
                return lambda e: _or3([f(e) for f in fns])
            case ast.Comparison(op=op, left=left, right=right):
                return self.script_comparison(op, left, right)
            case ast.Arithmetic(op=op, left=left, right=right):
                lf, rf = self.value(left), self.value(right)
                return lambda e: fn.arithmetic(op, lf(e), rf(e))
            case ast.Negate(operand=inner):
                inner_fn = self.value(inner)
                return lambda e: fn.negate(inner_fn(e))
            case ast.FunctionCall(name=name, args=args, case_insensitive=ci):
                arg_fns = [self.value(a) for a in args]
                return lambda e: fn.call(name, [f(e) for f in arg_fns], ci)
            case ast.InSet() | ast.Match():
                return self.script_predicate(node)
        raise self.error(f"cannot evaluate {type(node).__name__}", node)

    def script_comparison(self, op: str, left: ast.Expr, right: ast.Expr) -> ValueFn:
        # '== null' and '!= null' are null checks (IsNull / IsNotNull), never null themselves.
        null_right = self.foldable(right) and self.constant(right) is None
        null_left = self.foldable(left) and self.constant(left) is None
        if null_left or null_right:
            other = self.value(left if null_right else right)
            if op == "==":
                return lambda e: other(e) is None
            if op == "!=":
                return lambda e: other(e) is not None
            return lambda _e: None
        lf, rf = self.value(left), self.value(right)
        typed_literal = self._typed_literal_pair(left, right)
        if typed_literal is not None:
            lf, rf = typed_literal
        return lambda e: _script_compare(op, lf(e), rf(e))

    def _typed_literal_pair(self, left: ast.Expr,
                            right: ast.Expr) -> tuple[ValueFn, ValueFn] | None:
        """Field against constant inside a script: parse the constant as the field's type."""
        if isinstance(left, ast.Field) and isinstance(right, ast.Literal):
            return self._typed_pair(left, right)
        if isinstance(right, ast.Field) and isinstance(left, ast.Literal):
            pair = self._typed_pair(right, left)
            return None if pair is None else (pair[1], pair[0])
        return None

    def _typed_pair(self, field: ast.Field,
                    constant: ast.Literal) -> tuple[ValueFn, ValueFn] | None:
        field_type = self.field_type(field)
        if field_type is None or constant.value is None:
            return None
        literal = literal_for_type(constant.value, field_type, self.schema, field.name)
        key = _ordering_key(field_type)
        get = self.value(field)
        if key is None:
            return get, lambda _row: literal
        lit_key = key(literal)

        def keyed(row: Event) -> Any:
            value = get(row)
            return None if value is None else key(value)

        return keyed, lambda _row: lit_key

    def script_predicate(self, node: ast.InSet | ast.Match) -> ValueFn:
        """``in`` / ``:`` / ``like`` / ``regex`` inside a script: null when the value is null."""
        value_fn = self.value(node.value)
        if isinstance(node, ast.InSet):
            option_fns = [self.value(o) for o in node.options]
            insensitive = node.case_insensitive
            negated = node.negated

            def in_(e: Event) -> Any:
                value = value_fn(e)
                if value is None:
                    return None
                seen_null = False
                for option_fn in option_fns:
                    option = option_fn(e)
                    if option is None:
                        seen_null = True
                        continue
                    if insensitive and isinstance(value, str) and isinstance(option, str):
                        equal = fold(value) == fold(option)
                    else:
                        equal = _script_compare("==", value, option) is True
                    if equal:
                        return not negated
                if seen_null:
                    return None
                return negated

            return in_
        constants = [p.value for p in node.patterns]
        if node.kind == "regex":
            test = compile_regexes([str(c) for c in constants],
                                   case_insensitive=node.case_insensitive)
        else:
            test = compile_wildcards([str(c) for c in constants if c is not None],
                                     case_insensitive=node.case_insensitive)

        def match(e: Event) -> Any:
            value = value_fn(e)
            if value is None:
                return None
            return test(value if isinstance(value, str) else fn.java_string(value))

        return match


def text_query(node: ast.TextMatch, get: ValueFn) -> Predicate:
    """A match on an analysed field (``ast.TextMatch``): true when a value passes."""
    analyzer = node.analyzer

    def terms_of(value: Any) -> tuple[str, ...]:
        return analyze(value if isinstance(value, str) else fn.java_string(value), analyzer)

    test: Test
    if node.kind == "match":
        wanted = frozenset(analyze(node.query, analyzer))
        if not wanted:
            return lambda _e: False  # zero_terms_query: none

        def test(value: Any) -> bool:
            return not wanted.isdisjoint(terms_of(value))

    elif node.kind == "phrase":
        phrase = analyze(node.query, analyzer)
        if not phrase:
            return lambda _e: False

        def test(value: Any) -> bool:
            return contains_phrase(terms_of(value), phrase)

    else:
        pattern = compile_pieces(node.pieces)

        def test(value: Any) -> bool:
            return any(pattern(term) for term in terms_of(value))

    return _any_value(get, test, when_missing=False)


def _any_value(get: ValueFn, test: Test, *, when_missing: bool) -> Predicate:
    """A field query: true when any of the field's values passes ``test``."""

    def matches(event: Event) -> bool:
        value = get(event)
        if value is None:
            return when_missing
        if isinstance(value, list):
            return any(test(v) for v in value)
        return test(value)

    return matches


_FLIP: dict[str, ast.ComparisonOp] = {
    "==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<=",
}


def _and3(values: list[Any]) -> Any:
    result: Any = True
    for value in values:
        if value is False:
            return False
        if value is None:
            result = None
    return result


def _or3(values: list[Any]) -> Any:
    result: Any = False
    for value in values:
        if value is True:
            return True
        if value is None:
            result = None
    return result


__all__ = ["FLOAT_TYPES", "INTEGER_TYPES", "FilterCompiler"]
