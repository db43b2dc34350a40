"""EQL parser: tokens -> syntax tree, following Elasticsearch's EQL grammar (EqlBase.g4).

A hand-written recursive-descent parser, so that every error names the line and column and
shows the offending line with a caret, in the words a detection engineer knows. Precedence,
loosest first: ``or``, ``and``, ``not``, comparisons (``== != < <= > >=``, not associative),
``+ -``, ``* / %``, unary ``-``; the predicates (``in``, ``:``, ``like``, ``regex``) bind to
the primary expression right before them, as in Elasticsearch's grammar.
"""

from __future__ import annotations

import re
from typing import Literal, NoReturn, cast

from vigil.eql import ast
from vigil.eql.functions_spec import ENDGAME_ONLY_FUNCTIONS, FUNCTIONS
from vigil.eql.tokens import T, Token, tokenize
from vigil.errors import EqlSemanticError, EqlSyntaxError

# Nesting deeper than this is refused with an error rather than a RecursionError.
MAX_DEPTH = 100
MAX_TREE_DEPTH = 300  # operators below operators, chains of binary operators included
MAX_WILDCARD_PARTS = 200  # literal runs between "*" in one pattern (prebuilt rules: < 35)
_STARS = re.compile(r"\*+")

_TIME_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
_UNSUPPORTED_PIPES = frozenset(
    {"count", "filter", "sort", "unique", "unique_count", "window"}
)
_LINEAGE = frozenset({"descendant", "child", "event"})


def _span(first: Token, last: Token) -> ast.Span:
    return ast.Span(first.offset, last.end, first.line, first.column)


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0
        self.token = self.tokens[0]  # the current token (kept as an attribute: hot path)
        self.previous = self.token  # the last token consumed

    # ------------------------------------------------------------ token helpers

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.token
        if token.kind is not T.EOF:
            self.index += 1
            self.token = self.tokens[self.index]
            self.previous = token
        return token

    def fail(self, reason: str, token: Token | None = None, *,
             semantic: bool = False) -> NoReturn:
        token = token or self.token
        width = max(1, token.end - token.offset)
        cls = EqlSemanticError if semantic else EqlSyntaxError
        raise cls(reason, self.text, token.line, token.column, width)

    def describe(self, token: Token) -> str:
        if token.kind is T.EOF:
            return "the end of the query"
        if token.kind is T.STRING:
            return "a string"
        return f"'{self.text[token.offset:token.end]}'"

    def expect_op(self, op: str, what: str) -> Token:
        if not self.token.is_op(op):
            self.fail(f"expected {what}, found {self.describe(self.token)}")
        return self.advance()

    def expect_keyword(self, word: str, what: str | None = None) -> Token:
        if not self.token.is_keyword(word):
            self.fail(f"expected {what or repr(word)}, found {self.describe(self.token)}")
        return self.advance()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"expression nested too deeply (more than {MAX_DEPTH} levels)")

    # ------------------------------------------------------------ statement

    def parse_statement(self) -> ast.Query:
        if self.token.kind is T.EOF:
            self.fail("empty query: expected an event query, 'sequence' or 'sample'")
        body = self.parse_query_body()
        pipes: list[ast.Pipe] = []
        while self.token.is_op("|"):
            pipes.append(self.parse_pipe())
        trailing = self.token
        if trailing.kind is not T.EOF:
            if trailing.is_op("]"):
                self.fail("unexpected ']': no stage is open here")
            self.fail(f"unexpected {self.describe(trailing)} after the end of the query")
        query = ast.Query(body, tuple(pipes), self.text)
        self.check_limits(query)
        return query

    def check_limits(self, query: ast.Query) -> None:
        """What the engine cannot run in bounded time and stack, refused where the query is
        read: a tree deeper than MAX_TREE_DEPTH (a chain of 5,000 ``+`` parses without
        recursion but nests that deep), a pattern with more than MAX_WILDCARDS wildcards
        (matching costs the value's length times theirs)."""
        for event_query in query.event_queries():
            stack: list[tuple[ast.Expr, int]] = [(event_query.condition, 1)]
            while stack:
                node, depth = stack.pop()
                if depth > MAX_TREE_DEPTH:
                    self._fail_at(node, f"expression nested too deeply (more than "
                                        f"{MAX_TREE_DEPTH} levels of operators)")
                if isinstance(node, ast.Match) and node.kind != "regex":
                    for pattern in node.patterns:
                        text = pattern.value if isinstance(pattern.value, str) else ""
                        # Literal runs between stars each cost a pass over the value (runs
                        # of stars, and "?" alone, merge into one state and cost nothing).
                        count = sum(1 for part in _STARS.split(text) if part.strip("?"))
                        if count > MAX_WILDCARD_PARTS and "*" in text:
                            self._fail_at(pattern, f"pattern with {count:,} literal parts "
                                                   f"between wildcards: at most "
                                                   f"{MAX_WILDCARD_PARTS} are accepted "
                                                   "(matching time grows with their number)")
                stack.extend((child, depth + 1) for child in ast.children(node))

    def _fail_at(self, node: ast.Expr, reason: str) -> NoReturn:
        span = getattr(node, "span", ast.NO_SPAN)
        if span is ast.NO_SPAN or span.line < 1:
            raise EqlSemanticError(reason, self.text)
        raise EqlSemanticError(reason, self.text, span.line, span.column,
                               max(1, min(span.end - span.start, 40)))

    def parse_query_body(self) -> ast.EventQuery | ast.Sequence | ast.Sample:
        token = self.token
        if token.is_keyword("sequence"):
            return self.parse_sequence()
        if token.is_keyword("sample"):
            return self.parse_sample()
        if token.kind is T.IDENT and token.text == "join":
            self.fail("'join' is not supported by Elasticsearch EQL (use 'sequence')")
        return self.parse_event_filter()

    def parse_pipe(self) -> ast.Pipe:
        bar = self.advance()
        name = self.token
        if name.kind is not T.IDENT:
            self.fail(f"expected a pipe name after '|', found {self.describe(name)}")
        self.advance()
        if name.text in _UNSUPPORTED_PIPES:
            self.fail(f"pipe '| {name.text}' is not supported by Elasticsearch EQL "
                      "(only head and tail are)", name)
        if name.text not in ("head", "tail"):
            self.fail(f"unknown pipe '| {name.text}' (Elasticsearch EQL has head and tail)",
                      name)
        count_token = self.token
        if count_token.kind is not T.INTEGER:
            self.fail(f"'| {name.text}' needs a positive whole number, found "
                      f"{self.describe(count_token)}")
        self.advance()
        count = int(count_token.text)
        if count <= 0:
            self.fail(f"'| {name.text}' needs a positive number, found {count}", count_token,
                      semantic=True)
        kind: Literal["head", "tail"] = "head" if name.text == "head" else "tail"
        return ast.Pipe(kind, count, _span(bar, count_token))

    # ------------------------------------------------------------ event filters

    def parse_event_filter(self) -> ast.EventQuery:
        first = self.token
        category: str | None
        if first.is_keyword("any"):
            category = None
        elif first.kind in (T.IDENT, T.QUOTED_IDENT, T.STRING) and not (
            first.kind is T.IDENT and first.text in ("where", "by", "with", "until")
        ):
            category = first.text
        else:
            self.fail(f"expected an event category (or 'any'), found {self.describe(first)}")
        self.advance()
        if not self.token.is_keyword("where"):
            self.fail(f"expected 'where' after the event category, found "
                      f"{self.describe(self.token)}")
        self.advance()
        condition = self.parse_expression()
        return ast.EventQuery(category, condition, _span(first, self.previous))

    # ------------------------------------------------------------ sequence / sample

    def parse_join_keys(self) -> tuple[ast.Field, ...]:
        by = self.expect_keyword("by")
        keys: list[ast.Field] = []
        while True:
            start = self.token
            expr = self.parse_expression()
            if not isinstance(expr, ast.Field):
                self.fail("a join key must be a field", start, semantic=True)
            keys.append(expr)
            if not self.token.is_op(","):
                break
            self.advance()
        if not keys:
            self.fail("expected a field after 'by'", by)
        return tuple(keys)

    def parse_sequence(self) -> ast.Sequence:
        first = self.advance()
        keys: tuple[ast.Field, ...] = ()
        maxspan: int | None = None
        if self.token.is_keyword("by"):
            keys = self.parse_join_keys()
        if self.token.is_keyword("with"):
            maxspan = self.parse_maxspan()
            if self.token.is_keyword("by"):
                self.fail("put the sequence's 'by' keys before 'with maxspan'")
        stages: list[ast.Stage] = []
        while self.token.is_op("[", "!["):
            stages.append(self.parse_stage(allow_missing=True, allow_runs=True))
        until: ast.Stage | None = None
        if self.token.is_keyword("until"):
            self.advance()
            if not self.token.is_op("["):
                self.fail(f"expected '[' to open the until stage, found "
                          f"{self.describe(self.token)}")
            until = self.parse_stage(allow_missing=False, allow_runs=False)
        expanded = sum(stage.runs for stage in stages)
        if expanded < 2:
            self.fail(f"a sequence needs at least 2 stages, found {len(stages)}", first,
                      semantic=True)
        if maxspan is None and any(stage.missing for stage in stages):
            self.fail("a sequence with missing-event stages ('![...]') needs 'with maxspan'",
                      first, semantic=True)
        if all(stage.missing for stage in stages):
            self.fail("a sequence needs at least one stage that is not missing ('![...]')",
                      first, semantic=True)
        sequence = ast.Sequence(keys, maxspan, tuple(stages), until,
                                _span(first, self.previous))
        self.check_key_counts(sequence.stages + ((until,) if until else ()))
        return sequence

    def parse_sample(self) -> ast.Sample:
        first = self.advance()
        keys: tuple[ast.Field, ...] = ()
        if self.token.is_keyword("by"):
            keys = self.parse_join_keys()
        if self.token.is_keyword("with"):
            self.fail("'with' is not allowed on a sample")
        stages: list[ast.Stage] = []
        while self.token.is_op("[", "!["):
            stages.append(self.parse_stage(allow_missing=False, allow_runs=False))
        if len(stages) < 2:
            self.fail(f"a sample needs at least 2 stages, found {len(stages)}", first,
                      semantic=True)
        self.check_key_counts(tuple(stages))
        return ast.Sample(keys, tuple(stages), _span(first, self.previous))

    def check_key_counts(self, stages: tuple[ast.Stage, ...]) -> None:
        expected = len(stages[0].join_keys)
        for stage in stages[1:]:
            if len(stage.join_keys) != expected:
                token = self._token_at(stage.span.start)
                self.fail(
                    f"inconsistent number of join keys: expected {expected} like the first "
                    f"stage, found {len(stage.join_keys)}",
                    token,
                    semantic=True,
                )

    def _token_at(self, offset: int) -> Token:
        for token in self.tokens:
            if token.offset == offset:
                return token
        return self.token

    def parse_stage(self, *, allow_missing: bool, allow_runs: bool) -> ast.Stage:
        opening = self.advance()
        missing = opening.text == "!["
        if missing and not allow_missing:
            self.fail("missing-event stages ('![...]') are only allowed in a sequence", opening)
        query = self.parse_event_filter()
        if not self.token.is_op("]"):
            self.fail(f"expected ']' to close the stage, found {self.describe(self.token)}")
        self.advance()
        keys: tuple[ast.Field, ...] = ()
        if self.token.kind is T.IDENT and self.token.text == "fork":
            self.fail("'fork' is not supported by Elasticsearch EQL")
        if self.token.is_keyword("by"):
            keys = self.parse_join_keys()
        runs = 1
        if self.token.is_keyword("with") and self.peek().is_keyword("maxspan"):
            self.fail("'with maxspan' belongs after 'sequence [by ...]', before the first stage")
        if self.token.is_keyword("with"):
            with_token = self.advance()
            if not (self.token.kind is T.IDENT and self.token.text == "runs"):
                self.fail(f"expected 'runs' after 'with', found {self.describe(self.token)}")
            if not allow_runs:
                self.fail("'with runs' is only allowed on a sequence stage", with_token)
            self.advance()
            self.expect_op("=", "'=' after 'runs'")
            value = self.token
            if value.kind is not T.INTEGER:
                self.fail(f"expected a whole number of runs, found {self.describe(value)}")
            self.advance()
            runs = int(value.text)
            if not 1 <= runs <= 100:
                self.fail(f"runs must be between 1 and 100, found {runs}", value, semantic=True)
        return ast.Stage(query, keys, missing, runs, _span(opening, self.previous))

    def parse_maxspan(self) -> int:
        self.advance()  # with
        self.expect_keyword("maxspan", "'maxspan' after 'with'")
        self.expect_op("=", "'=' after 'maxspan'")
        value = self.token
        if value.kind is T.DECIMAL:
            self.fail(f"a maxspan must be a whole number, found {value.text}", value,
                      semantic=True)
        if value.kind is not T.INTEGER:
            self.fail(f"expected a time span such as 5m, found {self.describe(value)}")
        self.advance()
        unit = self.token
        if unit.kind is not T.IDENT or (unit.offset != value.end and unit.text not in (
            _TIME_UNITS_MS
        )):
            self.fail(f"missing time unit after maxspan={value.text} (one of ms, s, m, h, d)",
                      value, semantic=True)
        if unit.text not in _TIME_UNITS_MS:
            self.fail(f"unknown time unit '{unit.text}' (use ms, s, m, h or d)", unit,
                      semantic=True)
        self.advance()
        amount = int(value.text)
        if amount <= 0:
            self.fail("maxspan must be positive", value, semantic=True)
        return amount * _TIME_UNITS_MS[unit.text]

    # ------------------------------------------------------------ expressions

    def parse_expression(self) -> ast.Expr:
        self.enter()
        try:
            return self.parse_binary(_OR)
        finally:
            self.depth -= 1

    def parse_binary(self, min_level: int) -> ast.Expr:
        """Precedence climbing over or / and / comparisons / + - / * / %.

        One Python frame per operator level would make nested parentheses cost many frames;
        climbing keeps it to a few per parenthesis, so MAX_DEPTH is reachable safely.
        """
        first = self.token
        left = self.parse_prefix()
        while True:
            token = self.token
            level = _binary_level(token)
            if level is None or level < min_level:
                return left
            if level == _COMPARE:
                if token.is_op("="):
                    self.fail("'=' is not an EQL comparison: use '==' (case-sensitive) or ':' "
                              "(case-insensitive)")
                self.advance()
                right = self.parse_binary(_COMPARE + 1)
                op = cast("ast.ComparisonOp", token.text)
                left = ast.Comparison(op, left, right, _span(first, self.previous))
                if _binary_level(self.token) == _COMPARE:
                    self.fail("comparisons cannot be chained: add parentheses or 'and'")
                continue
            if level in (_OR, _AND):
                operands = [left]
                while self.token.is_keyword(token.text):
                    self.advance()
                    operands.append(self.parse_binary(level + 1))
                node_type = ast.Or if level == _OR else ast.And
                left = node_type(tuple(operands), _span(first, self.previous))
                continue
            self.advance()
            right = self.parse_binary(level + 1)
            arithmetic = cast("ast.ArithmeticOp", token.text)
            left = ast.Arithmetic(arithmetic, left, right, _span(first, self.previous))

    def parse_prefix(self) -> ast.Expr:
        """``not`` (binds looser than comparisons) and unary signs, as loops, not recursion."""
        if self.token.is_keyword("not"):
            nots: list[Token] = []
            while self.token.is_keyword("not"):
                nots.append(self.advance())
            if len(nots) > MAX_DEPTH:
                self.fail(f"expression nested too deeply (more than {MAX_DEPTH} levels)",
                          nots[0])
            expr = self.parse_binary(_COMPARE)
            for token in reversed(nots):
                expr = ast.Not(expr, _span(token, self.previous))
            return expr
        signs: list[Token] = []
        while self.token.is_op("-", "+"):
            signs.append(self.advance())
        if len(signs) > MAX_DEPTH:
            self.fail(f"expression nested too deeply (more than {MAX_DEPTH} levels)", signs[0])
        expr = self.parse_predicated()
        for sign in reversed(signs):
            if sign.text != "-":
                continue
            if isinstance(expr, ast.Literal) and _is_number(expr.value):
                assert isinstance(expr.value, int | float)
                expr = ast.Literal(-expr.value, _span(sign, self.previous))
            else:
                expr = ast.Negate(expr, _span(sign, self.previous))
        return expr

    def parse_predicated(self) -> ast.Expr:
        first = self.token
        value = self.parse_primary()
        token = self.token
        negated = False
        if token.is_keyword("not") and (
            self.peek().is_keyword("in") or (self.peek().kind is T.TILDE_IDENT
            and self.peek().text == "in~")
        ):
            negated = True
            self.advance()
            token = self.token
        if token.is_keyword("in") or (token.kind is T.TILDE_IDENT and token.text == "in~"):
            self.advance()
            self.expect_op("(", f"'(' after '{token.text}'")
            options: list[ast.Expr] = []
            while True:
                options.append(self.parse_expression())
                if self.token.is_op(","):
                    self.advance()
                    continue
                break
            self.expect_op(")", "',' or ')' to close the list")
            return ast.InSet(value, tuple(options), token.text == "in~", negated,
                             _span(first, self.previous))
        kind: ast.MatchKind | None = None
        insensitive = False
        if token.is_op(":", "!:"):
            kind, insensitive = ":", True
        elif token.is_keyword("like", "regex"):
            kind = cast("ast.MatchKind", token.text)
        elif token.kind is T.TILDE_IDENT and token.text in ("like~", "regex~"):
            kind, insensitive = cast("ast.MatchKind", token.text[:-1]), True
        if kind is None:
            return value
        self.advance()
        patterns: list[ast.Literal] = []
        if self.token.is_op("("):
            self.advance()
            while True:
                patterns.append(self.parse_constant(token.text))
                if self.token.is_op(","):
                    self.advance()
                    continue
                break
            self.expect_op(")", "',' or ')' to close the list")
        else:
            patterns.append(self.parse_constant(token.text))
        if kind != ":":
            for pattern in patterns:
                if not isinstance(pattern.value, str):
                    self.fail(f"'{token.text}' needs string patterns",
                              self._token_at(pattern.span.start), semantic=True)
        match = ast.Match(kind, value, tuple(patterns), insensitive, _span(first, self.previous))
        # 'x !: y' is Elasticsearch's InsensitiveWildcardNotEquals, i.e. not (x : y).
        return ast.Not(match, match.span) if token.text == "!:" else match

    def parse_constant(self, after: str) -> ast.Literal:
        token = self.token
        sign = None
        if token.is_op("-"):
            sign = self.advance()
            token = self.token
        literal = self.parse_literal()
        if literal is None or (sign is not None and not isinstance(literal.value, int | float)):
            self.fail(f"expected a constant after '{after}', found {self.describe(token)}")
        if sign is not None:
            assert isinstance(literal.value, int | float)
            literal = ast.Literal(-literal.value, _span(sign, token))
        return literal

    def parse_literal(self) -> ast.Literal | None:
        token = self.token
        value: ast.Scalar
        if token.kind is T.STRING:
            value = token.text
        elif token.kind is T.INTEGER:
            value = int(token.text)
        elif token.kind is T.DECIMAL:
            value = float(token.text)
        elif token.is_keyword("true", "false"):
            value = token.text == "true"
        elif token.is_keyword("null"):
            value = None
        else:
            return None
        self.advance()
        return ast.Literal(value, _span(token, token))

    def parse_primary(self) -> ast.Expr:
        token = self.token
        literal = self.parse_literal()
        if literal is not None:
            return literal
        if token.is_op("("):
            self.advance()
            expr = self.parse_expression()
            self.expect_op(")", "')' to close the parenthesis")
            return expr
        if token.is_op("?"):
            self.advance()
            name_token = self.token
            if name_token.kind not in (T.IDENT, T.QUOTED_IDENT) or (
                name_token.kind is T.IDENT and name_token.text in _RESERVED
            ):
                self.fail(f"expected a field name after '?', found {self.describe(name_token)}")
            return self.parse_field(token, optional=True)
        if token.kind is T.TILDE_IDENT or (token.kind is T.IDENT and self.peek().is_op("(")):
            return self.parse_function()
        if token.kind is T.IDENT and token.text in _LINEAGE and self.peek().is_keyword("of"):
            self.fail(f"'{token.text} of' is not supported by Elasticsearch EQL")
        if token.kind is T.QUOTED_IDENT or (token.kind is T.IDENT and token.text not in _RESERVED):
            return self.parse_field(token, optional=False)
        if token.kind is T.EOF:
            self.fail("unexpected end of the query: expected a value")
        if token.kind is T.IDENT:
            self.fail(f"unexpected keyword '{token.text}': expected a value (backquote a field "
                      f"named like a keyword: `{token.text}`)")
        self.fail(f"unexpected {self.describe(token)}: expected a value")

    def parse_field(self, first: Token, *, optional: bool) -> ast.Field:
        parts = [self.advance().text]
        while True:
            if self.token.is_op(".") and self.peek().offset == self.token.end:
                self.advance()
                part = self.token
                if part.kind is T.QUOTED_IDENT or part.kind is T.IDENT:
                    parts.append(self.advance().text)
                    continue
                self.fail(f"expected a field name after '.', found {self.describe(part)}")
            if self.token.is_op("[") and self.peek().kind is T.INTEGER:
                self.fail("array indexes in field names are not supported", self.token,
                          semantic=True)
            break
        return ast.Field(".".join(parts), optional, _span(first, self.previous))

    def parse_function(self) -> ast.FunctionCall:
        name_token = self.advance()
        raw = name_token.text
        insensitive = raw.endswith("~")
        base = raw[:-1] if insensitive else raw
        spec = FUNCTIONS.get(base.lower())
        if spec is None:
            if base.lower() in ENDGAME_ONLY_FUNCTIONS:
                self.fail(f"function '{base}' is not supported by Elasticsearch EQL",
                          name_token)
            self.fail(f"unknown function '{base}'", name_token)
        if insensitive and not spec.tilde:
            self.fail(f"function '{spec.name}' has no case-insensitive '~' variant", name_token,
                      semantic=True)
        self.expect_op("(", f"'(' after '{raw}'")
        args: list[ast.Expr] = []
        if not self.token.is_op(")"):
            while True:
                args.append(self.parse_expression())
                if self.token.is_op(","):
                    self.advance()
                    continue
                break
        self.expect_op(")", "',' or ')' to close the function call")
        count = len(args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            if spec.max_args == spec.min_args:
                wanted = f"{spec.min_args}"
            elif spec.max_args is None:
                wanted = f"at least {spec.min_args}"
            else:
                wanted = f"{spec.min_args} to {spec.max_args}"
            self.fail(f"{spec.name}() takes {wanted} arguments, found {count}", name_token,
                      semantic=True)
        return ast.FunctionCall(spec.name, tuple(args), insensitive,
                                _span(name_token, self.previous))


_OR, _AND, _COMPARE, _ADD, _MULTIPLY = 1, 2, 3, 4, 5


def _binary_level(token: Token) -> int | None:
    if token.kind is T.IDENT:
        return _OR if token.text == "or" else _AND if token.text == "and" else None
    if token.kind is not T.OP:
        return None
    if token.text in _COMPARISONS or token.text == "=":
        return _COMPARE
    if token.text in ("+", "-"):
        return _ADD
    if token.text in ("*", "/", "%"):
        return _MULTIPLY
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Keywords that cannot name a field without backquotes.
_RESERVED = frozenset(
    {"and", "any", "by", "false", "in", "like", "not", "null", "or", "regex", "sample",
     "sequence", "true", "until", "where", "with"}
)


def parse(text: str) -> ast.Query:
    """Parse an EQL statement; raises ``EqlSyntaxError`` with line, column and a caret."""
    if not isinstance(text, str):
        raise TypeError(f"an EQL query is a string, not {type(text).__name__}")
    try:
        return Parser(text).parse_statement()
    except RecursionError:
        # Belt and braces: MAX_DEPTH should stop nesting long before Python's own limit.
        raise EqlSyntaxError("query nested too deeply", text) from None


def parse_expression(text: str) -> ast.Expr:
    """Parse a bare expression (as the eql fold tests and exceptions use)."""
    parser = Parser(text)
    expr = parser.parse_expression()
    if parser.token.kind is not T.EOF:
        parser.fail(f"unexpected {parser.describe(parser.token)} after the expression")
    return expr
