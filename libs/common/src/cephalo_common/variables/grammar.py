"""Octostache's grammar, parsed with the same choices its Sprache parser makes.

A hand-written PEG: alternatives are tried in Octostache's order, a choice that succeeded
is never revisited, and the places Sprache commits after consuming input (`XOr`: a `.`
step, a calc factor in parentheses, a braced calc variable, a decimal) commit here too.
So a template Octostache accepts parses to the same tree, and one it rejects is rejected.

Block-level rules are memoized by position (packrat), which keeps parsing near-linear:
without it a run of unterminated `#{if}`s backtracks exponentially. Nesting is bounded by
`Limits.max_depth`, so no input can exhaust the stack. Failures are recorded (furthest
position, what was expected there, which blocks were open) for `parser` to explain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cephalo_common.variables.ast import (
    CalcConstant,
    CalcNode,
    CalcOperation,
    Calculation,
    CalcVariable,
    Condition,
    Conditional,
    Expression,
    FilterCall,
    Identifier,
    Indexer,
    Repetition,
    Step,
    Substitution,
    Symbol,
    Text,
    Token,
)

_IDENTIFIER_PUNCTUATION = frozenset("_-:/~()@")
_CLOSERS = {"if": "#{/if}", "unless": "#{/unless}", "each": "#{/each}"}

T = TypeVar("T")
Parsed = tuple[T, int] | None


class TooDeep(Exception):
    """Nesting passed `max_depth`: the whole parse is refused."""

    def __init__(self, position: int) -> None:
        self.position = position


def is_identifier_char(char: str) -> bool:
    return char.isalpha() or char.isdecimal() or char in _IDENTIFIER_PUNCTUATION


class Grammar:
    """One parse of one text: each rule takes a position and returns `(node, end)` or None."""

    def __init__(self, text: str, max_depth: int) -> None:
        self.s = text
        self.n = len(text)
        self.max_depth = max_depth
        self.open: list[tuple[str, int]] = []
        self.furthest = -1
        self.expected: list[str] = []
        self.open_at_furthest: tuple[tuple[str, int], ...] = ()
        self.memo: dict[tuple[str, int], Parsed[Token]] = {}

    # -- bookkeeping ---------------------------------------------------------------------

    def fail(self, position: int, expected: str) -> None:
        """Record what would have let parsing continue; the furthest failure explains errors."""
        if position > self.furthest:
            self.furthest = position
            self.expected = [expected]
            self.open_at_furthest = tuple(self.open)
        elif position == self.furthest:
            if expected not in self.expected:
                self.expected.append(expected)
            if len(self.open) > len(self.open_at_furthest):
                self.open_at_furthest = tuple(self.open)

    def enter(self, kind: str, position: int) -> None:
        self.open.append((kind, position))
        if len(self.open) > self.max_depth:
            raise TooDeep(position)

    def leave(self) -> None:
        self.open.pop()

    def memoized(
        self, rule: str, position: int, parse: Callable[[int], Parsed[Token]]
    ) -> Parsed[Token]:
        key = (rule, position)
        if key not in self.memo:
            self.memo[key] = parse(position)
        return self.memo[key]

    def skip_ws(self, i: int) -> int:
        s, n = self.s, self.n
        while i < n and s[i].isspace():
            i += 1
        return i

    def keyword(self, i: int, word: str) -> bool:
        """`Parse.IgnoreCase(word)`."""
        chunk = self.s[i : i + len(word)]
        return len(chunk) == len(word) and all(
            a.lower() == b for a, b in zip(chunk, word, strict=True)
        )

    def ldelim(self, p: int) -> bool:
        if self.s.startswith("#{", p) and not self.s.startswith("#{/", p):
            return True
        self.fail(p, "'#{'")
        return False

    # -- names -----------------------------------------------------------------------------

    def whitespace_ends_identifier(self, i: int) -> bool:
        """Sprache's `Except(WhiteSpace.FollowedBy("|"|"}"))` and `ExceptWhiteSpaceBeforeKeyword`."""
        s, n = self.s, self.n
        if i + 1 < n - 1 and s[i + 1] in "|}":
            return True
        for word in ("in", "==", "!="):
            end = i + 1 + len(word)
            if n > end and s[end].isspace() and s[i + 1 : end] == word:
                return True
        return False

    def identifier(self, p: int, *, allow_whitespace: bool = True) -> Parsed[Identifier]:
        s, n = self.s, self.n
        i = p
        while i < n:
            char = s[i]
            if char.isspace():
                if not allow_whitespace or self.whitespace_ends_identifier(i):
                    break
            elif not is_identifier_char(char):
                break
            i += 1
        if i == p:
            self.fail(p, "a variable name")
            return None
        return Identifier(s[p:i].strip(), p), i

    def symbol(self, p: int) -> Parsed[Symbol]:
        first = self.identifier(p)
        if first is None:
            return None
        steps: list[Step] = [first[0]]
        i = first[1]
        while True:
            step = self.trailing_step(i)
            if step is None:
                break
            steps.append(step[0])
            i = step[1]
        return Symbol(tuple(steps), p), i

    def trailing_step(self, i: int) -> Parsed[Step]:
        if i < self.n and self.s[i] == ".":
            return self.identifier(i + 1)
        if i < self.n and self.s[i] == "[":
            return self.indexer(i)
        self.fail(i, "'.'")
        self.fail(i, "'['")
        return None

    def indexer(self, p: int) -> Parsed[Indexer]:
        inner = self.substitution(self.skip_ws(p + 1))
        if inner is not None and isinstance(inner[0], Substitution):
            expression = inner[0].expression
            if isinstance(expression, Symbol):
                end = self.skip_ws(inner[1])
                if end < self.n and self.s[end] == "]":
                    return Indexer(None, expression, p), end + 1
                self.fail(end, "']'")
        literal = self.string_indexer(p)
        if literal is None:
            return None
        return Indexer(literal[0], None, p), literal[1]

    def string_indexer(self, p: int) -> Parsed[str]:
        s, n = self.s, self.n
        self.enter("indexer", p)
        try:
            i = self.skip_ws(p + 1)
            parts: list[str] = []
            while i < n and s[i] != "]":
                if s[i] == "[":
                    nested = self.string_indexer(i)
                    if nested is None:
                        break
                    parts.append(f"[{nested[0]}]")
                    i = nested[1]
                    continue
                j = i
                while j < n and s[j] not in "[]":
                    j += 1
                parts.append(s[i:j])
                i = j
            if i < n and s[i] == "]":
                return "".join(parts), i + 1
            self.fail(i, "']'")
            return None
        finally:
            self.leave()

    # -- expressions ---------------------------------------------------------------------

    def expression(self, p: int) -> Parsed[Expression]:
        """`FilterChain.Or(Symbol)`; a filter chain may start with no symbol (`#{ | NowDate}`)."""
        start = self.skip_ws(p)
        symbol = self.symbol(start)
        argument: Symbol = symbol[0] if symbol else Symbol((), p)
        links_from = self.skip_ws(symbol[1]) if symbol else p
        chain = self.filter_links(links_from, argument)
        if chain is not None:
            return chain
        if start != p:
            return self.symbol(p)
        return symbol

    def filter_links(self, i: int, argument: Expression) -> Parsed[Expression]:
        expression = argument
        links = 0
        while True:
            link = self.filter_link(i, expression)
            if link is None:
                break
            expression, i = link
            links += 1
        return (expression, i) if links else None

    def filter_link(self, i: int, argument: Expression) -> Parsed[FilterCall]:
        if not (i < self.n and self.s[i] == "|"):
            self.fail(i, "'|'")
            return None
        start = self.skip_ws(i + 1)
        name = self.identifier(start, allow_whitespace=False)
        if name is None:
            return None
        j = self.skip_ws(name[1])
        options: list[Token] = []
        while True:
            option = self.option(j)
            if option is None:
                break
            options.append(option[0])
            j = option[1]
        return FilterCall(name[0].text, argument, tuple(options), start), j

    def option(self, j: int) -> Parsed[Token]:
        parsed = self.block(j)
        if parsed is not None:
            return parsed
        start = self.skip_ws(j)
        word = self.identifier(start, allow_whitespace=False)
        if word is not None:
            return Text(word[0].text, start), self.skip_ws(word[1])
        quoted = self.quoted(j) or self.escaped_quoted(j)
        if quoted is not None:
            return Text(quoted[0], start), quoted[1]
        return None

    def quoted(self, j: int) -> Parsed[str]:
        s, n = self.s, self.n
        k = self.skip_ws(j)
        if not (k < n and s[k] == '"'):
            self.fail(k, "'\"'")
            return None
        m = k + 1
        while m < n and s[m] not in '"#':
            m += 1
        if m < n and s[m] == '"':
            return s[k + 1 : m], self.skip_ws(m + 1)
        self.fail(m, "a closing '\"' (a '#' needs \\\"…\\\" quotes)")
        return None

    def escaped_quoted(self, j: int) -> Parsed[str]:
        k = self.skip_ws(j)
        if not self.s.startswith('\\"', k):
            return None
        end = self.s.find('\\"', k + 2)
        if end < 0:
            self.fail(self.n, "a closing '\\\"'")
            return None
        return self.s[k + 2 : end], self.skip_ws(end + 2)

    # -- blocks --------------------------------------------------------------------------

    def substitution(self, p: int) -> Parsed[Token]:
        return self.memoized("substitution", p, self._substitution)

    def _substitution(self, p: int) -> Parsed[Token]:
        if not self.ldelim(p):
            return None
        self.enter("substitution", p)
        try:
            parsed = self.expression(self.skip_ws(p + 2))
            if parsed is None:
                return None
            end = self.skip_ws(parsed[1])
            if end < self.n and self.s[end] == "}":
                return Substitution(parsed[0], p), end + 1
            self.fail(end, "'}'")
            return None
        finally:
            self.leave()

    def condition(self, q: int) -> Parsed[Condition]:
        """`ExpressionsMatch | LeftStringMatch | RightStringMatch | TruthyMatch`, each a Token."""
        start = self.skip_ws(q)
        left = self.expression(start)
        if left is not None:
            operator = self.operator(self.skip_ws(left[1]))
            if operator is not None:
                equal, after = operator
                right = self.expression(after)
                if right is not None:
                    condition = Condition(left[0], equal, right=right[0])
                    return condition, self.skip_ws(right[1])
        literal = self.quoted(start) or self.escaped_quoted(start)
        if literal is not None:
            operator = self.operator(literal[1])
            if operator is not None:
                right = self.expression(operator[1])
                if right is not None:
                    condition = Condition(right[0], operator[0], literal=literal[0])
                    return condition, self.skip_ws(right[1])
        if left is None:
            return None
        operator = self.operator(self.skip_ws(left[1]))
        if operator is not None:
            literal = self.quoted(operator[1]) or self.escaped_quoted(operator[1])
            if literal is not None:
                return Condition(left[0], operator[0], literal=literal[0]), literal[1]
        return Condition(left[0]), self.skip_ws(left[1])

    def operator(self, i: int) -> Parsed[bool]:
        chunk = self.s[i : i + 2]
        if chunk in ("==", "!="):
            return chunk == "==", self.skip_ws(i + 2)
        self.fail(i, "'=='")
        self.fail(i, "'!='")
        return None

    def conditional(self, p: int) -> Parsed[Token]:
        return self.memoized("conditional", p, self._conditional)

    def _conditional(self, p: int) -> Parsed[Token]:
        if not self.ldelim(p):
            return None
        q = self.skip_ws(p + 2)
        if self.keyword(q, "if"):
            keyword, q = "if", q + 2
        elif self.keyword(q, "unless"):
            keyword, q = "unless", q + 6
        else:
            return None
        if not (q < self.n and self.s[q].isspace()):
            return None
        self.enter(keyword, p)
        try:
            return self._conditional_rest(p, keyword, self.skip_ws(q))
        finally:
            self.leave()

    def _conditional_rest(self, p: int, keyword: str, q: int) -> Parsed[Token]:
        parsed = self.condition(q)
        if parsed is None:
            return None
        condition, q = parsed
        q = self.skip_ws(q)
        if not (q < self.n and self.s[q] == "}"):
            self.fail(q, "'}'")
            return None
        body, q = self.block_body(q + 1, stop_at_elseif=keyword == "if")
        clauses: list[tuple[Condition, tuple[Token, ...], int]] = []
        while keyword == "if":
            clause = self.elseif(q)
            if clause is None:
                break
            clauses.append(clause[0])
            q = clause[1]
        otherwise: tuple[Token, ...] = ()
        if self.s.startswith("#{else}", q):
            otherwise, q = self.template_tokens(q + 7)
        else:
            self.fail(q, "#{else}")
        closer = _CLOSERS[keyword]
        if not self.s.startswith(closer, q):
            self.fail(q, closer)
            return None
        for clause_condition, clause_body, position in reversed(clauses):
            otherwise = (Conditional(clause_condition, clause_body, otherwise, "if", position),)
        if keyword == "if":
            return Conditional(condition, body, otherwise, "if", p), q + len(closer)
        return Conditional(condition, otherwise, body, "unless", p), q + len(closer)

    def is_elseif(self, q: int) -> bool:
        return self.s.startswith("#{elseif", q) and q + 8 < self.n and self.s[q + 8].isspace()

    def elseif(self, q: int) -> Parsed[tuple[Condition, tuple[Token, ...], int]]:
        if not self.is_elseif(q):
            self.fail(q, "#{elseif …}")
            return None
        parsed = self.condition(q + 9)
        if parsed is None:
            return None
        k = self.skip_ws(parsed[1])
        if not (k < self.n and self.s[k] == "}"):
            self.fail(k, "'}'")
            return None
        body, k = self.block_body(k + 1, stop_at_elseif=True)
        return (parsed[0], body, q), k

    def block_body(self, q: int, *, stop_at_elseif: bool) -> tuple[tuple[Token, ...], int]:
        tokens: list[Token] = []
        while not self.s.startswith("#{else}", q) and not (stop_at_elseif and self.is_elseif(q)):
            token = self.token(q)
            if token is None:
                break
            tokens.append(token[0])
            q = token[1]
        return tuple(tokens), q

    def repetition(self, p: int) -> Parsed[Token]:
        return self.memoized("repetition", p, self._repetition)

    def _repetition(self, p: int) -> Parsed[Token]:
        if not self.ldelim(p):
            return None
        q = self.skip_ws(p + 2)
        if not self.keyword(q, "each") or not (q + 4 < self.n and self.s[q + 4].isspace()):
            return None
        self.enter("each", p)
        try:
            return self._repetition_rest(p, self.skip_ws(q + 4))
        finally:
            self.leave()

    def _repetition_rest(self, p: int, q: int) -> Parsed[Token]:
        enumerator = self.identifier(q)
        if enumerator is None:
            return None
        q = self.skip_ws(enumerator[1])
        if not self.keyword(q, "in"):
            self.fail(q, "'in'")
            return None
        collection = self.symbol(self.skip_ws(q + 2))
        if collection is None:
            return None
        q = self.skip_ws(collection[1])
        if not (q < self.n and self.s[q] == "}"):
            self.fail(q, "'}'")
            return None
        body, q = self.template_tokens(q + 1)
        if not self.s.startswith("#{/each}", q):
            self.fail(q, "#{/each}")
            return None
        return Repetition(enumerator[0], collection[0], body, p), q + 8

    # -- calc ----------------------------------------------------------------------------

    def calculation(self, p: int) -> Parsed[Token]:
        return self.memoized("calculation", p, self._calculation)

    def _calculation(self, p: int) -> Parsed[Token]:
        if not self.ldelim(p):
            return None
        q = self.skip_ws(p + 2)
        if not self.keyword(q, "calc") or not (q + 4 < self.n and self.s[q + 4].isspace()):
            return None
        self.enter("calc", p)
        try:
            parsed = self.calc_chain(self.skip_ws(q + 4), "+-", self.calc_term)
            if parsed is None:
                return None
            end = self.skip_ws(parsed[1])
            if end < self.n and self.s[end] == "}":
                return Calculation(parsed[0], p), end + 1
            self.fail(end, "'}'")
            return None
        finally:
            self.leave()

    def calc_chain(
        self, q: int, operators: str, operand: Callable[[int], Parsed[CalcNode]]
    ) -> Parsed[CalcNode]:
        """Sprache's `ChainOperator`: left-associative, backs off a dangling operator."""
        first = operand(q)
        if first is None:
            return None
        left, i = first
        while True:
            k = self.skip_ws(i)
            if not (k < self.n and self.s[k] in operators):
                self.fail(k, "an operator")
                break
            right = operand(self.skip_ws(k + 1))
            if right is None:
                break
            left, i = CalcOperation(left, self.s[k], right[0]), right[1]
        return left, i

    def calc_term(self, q: int) -> Parsed[CalcNode]:
        return self.calc_chain(q, "*/%", self.calc_factor)

    def calc_factor(self, q: int) -> Parsed[CalcNode]:
        if not (q < self.n and self.s[q] == "("):
            return self.calc_value(q)
        self.enter("parentheses", q)
        try:
            inner = self.calc_chain(q + 1, "+-", self.calc_term)
            if inner is None:
                return None
            if inner[1] < self.n and self.s[inner[1]] == ")":
                return inner[0], inner[1] + 1
            self.fail(inner[1], "')'")
            return None
        finally:
            self.leave()

    def calc_value(self, q: int) -> Parsed[CalcNode]:
        s, n = self.s, self.n
        i = q
        while i < n and s[i].isdecimal():
            i += 1
        if i < n and s[i] == ".":
            j = i + 1
            while j < n and s[j].isdecimal():
                j += 1
            if j == i + 1:
                self.fail(j, "a digit")
                return None
            i = j
        if i > q:
            return CalcConstant(float(s[q:i])), i
        if q < n and s[q] == "{":
            inner = self.symbol(self.skip_ws(q + 1))
            if inner is None:
                return None
            end = self.skip_ws(inner[1])
            if end < n and s[end] == "}":
                return CalcVariable(inner[0]), end + 1
            self.fail(end, "'}'")
            return None
        variable = self.symbol(self.skip_ws(q))
        if variable is None:
            return None
        return CalcVariable(variable[0]), self.skip_ws(variable[1])

    # -- template ------------------------------------------------------------------------

    def token(self, p: int) -> Parsed[Token]:
        return self.memoized("token", p, self._token)

    def _token(self, p: int) -> Parsed[Token]:
        return self.block(p) or self.text(p)

    def block(self, p: int) -> Parsed[Token]:
        """`Conditional | Calculation | Repetition | Substitution`, skipping hopeless rules."""
        if not self.ldelim(p):
            return None
        head = self.s[self.skip_ws(p + 2) : self.skip_ws(p + 2) + 1].lower()
        rule = {"i": self.conditional, "u": self.conditional, "c": self.calculation}.get(head)
        if head == "e":
            rule = self.repetition
        parsed = rule(p) if rule is not None else None
        return parsed or self.substitution(p)

    def text(self, p: int) -> Parsed[Token]:
        """Plain text: `##{` escapes to `#{`, `###{x}` is `#` then a token, other `#` are literal."""
        s, n = self.s, self.n
        parts: list[str] = []
        i = p
        while i < n:
            if s[i] != "#":
                j = s.find("#", i)
                j = n if j < 0 else j
                parts.append(s[i:j])
                i = j
            elif i + 1 == n:
                parts.append("#")
                i += 1
            elif s.startswith("##", i) and i + 4 < n and s.startswith("#{", i + 2):
                parts.append("#")
                i += 2
            elif s.startswith("##{", i):
                parts.append("#{")
                i += 3
            elif s[i + 1] != "{":
                parts.append(s[i : i + 2])
                i += 2
            else:
                break
        if i == p:
            self.fail(p, "text")
            return None
        return Text("".join(parts), p), i

    def template_tokens(self, p: int) -> tuple[tuple[Token, ...], int]:
        tokens: list[Token] = []
        while p < self.n:
            token = self.token(p)
            if token is None:
                break
            tokens.append(token[0])
            p = token[1]
        return tuple(tokens), p
