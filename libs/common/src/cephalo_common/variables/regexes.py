""".NET regular expressions (as the `Replace` and `Match` filters take them) on Python's `re`.

Translated: named groups `(?<n>…)`/`(?'n'…)`, `\\k<n>`, `\\z`/`\\Z`, and replacement
strings (`$1`, `${name}`, `$$`, `$&`, `` $` ``, `$'`, `$+`, `$_`). Refused with a reason:
`\\p{…}` categories and character-class subtraction, which `re` cannot express.

Python's `re` has no match timeout (.NET uses one), so a pattern that can backtrack
catastrophically is refused up front: a group repeated without bound whose body both starts
and ends with something itself repeated without bound (`(a+)+`, `(\\w+\\s?)*`, `(\\s*\\w+)*`),
so consecutive iterations can split the same text many ways. `(\\d+\\.)+` and `(\\s\\w+)*`
pass; so does a body starting or ending with `.` repeated (`(.*,)*`). This is a heuristic:
it refuses a few harmless patterns (`(a+b+)+`) and misses exotic exponential ones
(overlapping alternations such as `(a|aa)+`); input length is also capped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

_QUANTIFIER = re.compile(r"(\*|\+|\?|\{(\d*)(,(\d*))?\})([?+]?)")


class RegexRefused(ValueError):
    """The pattern cannot be run safely or faithfully; the message says why."""


def translate_pattern(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt in "pP":
                raise RegexRefused(r"Unicode categories (\p{…}) are not supported")
            if nxt == "k" and i + 2 < n and pattern[i + 2] in "<'":
                close = ">" if pattern[i + 2] == "<" else "'"
                end = pattern.find(close, i + 3)
                if end < 0:
                    raise RegexRefused("unterminated \\k<name>")
                out.append(f"(?P={pattern[i + 3 : end]})")
                i = end + 1
                continue
            out.append({"z": r"\Z", "Z": r"(?=\n?\Z)"}.get(nxt, char + nxt))
            i += 2
            continue
        if char == "[":
            end = _class_end(pattern, i)
            body = pattern[i:end]
            if "-[" in body:
                raise RegexRefused("character class subtraction is not supported")
            out.append(body)
            i = end
            continue
        if pattern.startswith("(?<", i) and i + 3 < n and pattern[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        if pattern.startswith("(?'", i):
            end = pattern.find("'", i + 3)
            if end < 0:
                raise RegexRefused("unterminated (?'name'")
            out.append(f"(?P<{pattern[i + 3 : end]}>")
            i = end + 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _class_end(pattern: str, start: int) -> int:
    """Index just after the `]` closing the class that opens at `start`."""
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "]":
            return i + 1
        i += 1
    return len(pattern)


@dataclass
class _Edges:
    """Does a branch start / end with unbounded repetition (`wild`: of `.`)?"""

    done: bool = False
    head: bool = False
    tail: bool = False
    head_wild: bool = False
    tail_wild: bool = False


@dataclass
class _Level:
    """One group being scanned, branch by branch."""

    atomic: bool = False
    branch: _Edges = field(default_factory=_Edges)
    finished: list[_Edges] = field(default_factory=list)

    def add(self, repeats: tuple[bool, bool], wild: tuple[bool, bool], optional: bool) -> None:
        edges = self.branch
        if not edges.done:
            edges.head |= repeats[0]
            edges.head_wild |= wild[0]
            edges.done = not optional
        if repeats[1]:
            edges.tail, edges.tail_wild = True, edges.tail_wild or wild[1]
        elif not optional:
            edges.tail = edges.tail_wild = False

    def next_branch(self) -> None:
        self.finished.append(self.branch)
        self.branch = _Edges()

    def edges(self) -> tuple[bool, bool, bool, bool]:
        branches = [*self.finished, self.branch]
        return (
            any(b.head for b in branches),
            any(b.tail for b in branches),
            any(b.head_wild for b in branches),
            any(b.tail_wild for b in branches),
        )

    def ambiguous(self) -> bool:
        """Iterations could split the same text many ways."""
        head, tail, head_wild, tail_wild = self.edges()
        return (head and tail) or head_wild or tail_wild


def check_backtracking(pattern: str) -> None:
    """Refuse an unbounded repetition of an ambiguous group (see the module docstring)."""
    stack = [_Level()]
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "(":
            stack.append(_Level(atomic=pattern.startswith("(?>", i)))
            i += 1
            continue
        if char == "|":
            stack[-1].next_branch()
            i += 1
            continue
        group: _Level | None = None
        if char == ")" and len(stack) > 1:
            group = stack.pop()
            i += 1
        elif char == "\\":
            i += 2
        elif char == "[":
            i = _class_end(pattern, i)
        else:
            i += 1
        unbounded = optional = False
        quantifier = _QUANTIFIER.match(pattern, i)
        if quantifier:
            symbol, low, comma, high, mode = quantifier.groups()
            unbounded = symbol in "*+" or (comma is not None and not high)
            optional = symbol in "*?" or low in ("", "0")
            guarded = group is None or group.atomic or mode == "+"
            if unbounded and not guarded and group is not None and group.ambiguous():
                raise RegexRefused(
                    "nested unbounded repetition (such as (a+)+ or (.*,)*) can backtrack "
                    "catastrophically"
                )
            i = quantifier.end()
        inner = group.edges() if group is not None else (False, False, False, False)
        wild_here = unbounded and char == "."
        stack[-1].add(
            (unbounded or inner[0], unbounded or inner[1]),
            (wild_here or inner[2], wild_here or inner[3]),
            optional,
        )


@lru_cache(maxsize=256)
def compile_dotnet(pattern: str) -> re.Pattern[str]:
    """Translate, guard and compile; raise `RegexRefused` or `re.error` with the reason."""
    check_backtracking(pattern)
    return re.compile(translate_pattern(pattern))


def expand_replacement(replacement: str, match: re.Match[str]) -> str:
    """A .NET replacement string for one match."""
    out: list[str] = []
    i, n = 0, len(replacement)
    groups = match.re.groups
    while i < n:
        char = replacement[i]
        if char != "$" or i + 1 >= n:
            out.append(char)
            i += 1
            continue
        nxt = replacement[i + 1]
        special = {
            "$": "$",
            "&": match.group(0),
            "`": match.string[: match.start()],
            "'": match.string[match.end() :],
            "_": match.string,
            "+": (match.group(groups) or "") if groups else "",
        }
        if nxt in special:
            out.append(special[nxt])
            i += 2
            continue
        if nxt == "{":
            end = replacement.find("}", i + 2)
            name = replacement[i + 2 : end] if end > 0 else ""
            value = _group(match, name)
            if end > 0 and value is not None:
                out.append(value)
                i = end + 1
                continue
        if nxt.isdigit():
            j = i + 1
            while j < n and replacement[j].isdigit():
                j += 1
            digits = replacement[i + 1 : j]
            for length in range(len(digits), 0, -1):
                value = _group(match, digits[:length])
                if value is not None:
                    out.append(value)
                    i += 1 + length
                    break
            else:
                out.append("$")
                i += 1
            continue
        out.append("$")
        i += 1
    return "".join(out)


def _group(match: re.Match[str], name: str) -> str | None:
    try:
        key: int | str = int(name) if name.isdigit() else name
        return match.group(key) or ""
    except IndexError:
        return None
