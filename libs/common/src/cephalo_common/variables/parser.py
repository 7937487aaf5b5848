"""Parsing templates: the tree, or a syntax error that says where and why.

The grammar itself lives in `grammar`; this module turns its furthest failure into a
precise message, caches parses (they are pure), diagnoses blocks Octostache silently
demotes to variable names, reads variable names as paths, and escapes literal text.
"""

from __future__ import annotations

from functools import lru_cache

from cephalo_common.variables.ast import Identifier, Symbol, Template
from cephalo_common.variables.errors import (
    DEFAULT_LIMITS,
    ErrorCode,
    Limits,
    TemplateError,
    TemplateSyntaxError,
    error_at,
)
from cephalo_common.variables.grammar import Grammar, TooDeep, is_identifier_char

_STRUCTURAL = frozenset('}|.[]"=!{#\\')
_CLOSERS = {"if": "#{/if}", "unless": "#{/unless}", "each": "#{/each}"}
_BLOCK_KEYWORDS = ("if ", "unless ", "each ", "calc ")


def syntax_error(grammar: Grammar) -> TemplateError:
    """Explain the furthest point the grammar reached: the likeliest mistake is there."""
    s = grammar.s
    position = max(grammar.furthest, 0)
    blocks = grammar.open_at_furthest
    innermost = blocks[-1] if blocks else None
    if s.startswith("#{/", position):
        end = s.find("}", position)
        closer = s[position : end + 1] if end >= 0 else s[position:]
        still_open = [block for block in blocks if block[0] in _CLOSERS]
        if still_open:
            kind, opened = still_open[-1]
            message = (
                f"found {closer} but #{{{kind}}} opened at {_where(s, opened)} is closed by "
                f"{_CLOSERS[kind]}"
            )
            return error_at(s, position, ErrorCode.UNTERMINATED_BLOCK, message)
        message = f"{closer} has no matching opening tag"
        return error_at(s, position, ErrorCode.UNMATCHED_CLOSE, message)
    if position >= grammar.n and innermost is not None:
        return _unterminated(s, innermost)
    if innermost is not None and innermost[0] in ("substitution", "indexer", "calc"):
        char = s[position]
        if not char.isspace() and not is_identifier_char(char) and char not in _STRUCTURAL:
            message = (
                f"illegal character {char!r} in a variable name (use letters, digits, spaces "
                "and _ - : / ~ ( ) @, with . and [index] between parts)"
            )
            return error_at(s, position, ErrorCode.ILLEGAL_CHARACTER, message)
    found = repr(s[position]) if position < grammar.n else "end of template"
    expected = ", ".join(grammar.expected) or "something else"
    return error_at(s, position, ErrorCode.SYNTAX, f"unexpected {found}; expected {expected}")


def _unterminated(text: str, block: tuple[str, int]) -> TemplateError:
    kind, opened = block
    if kind in _CLOSERS:
        message = f"#{{{kind}}} is never closed: expected {_CLOSERS[kind]}"
    elif kind == "indexer":
        message = "unterminated '[': expected ']'"
    elif kind == "parentheses":
        message = "unterminated '(': expected ')'"
    else:
        message = "unterminated '#{': expected '}'"
    return error_at(text, opened, ErrorCode.UNTERMINATED_BLOCK, message)


def _where(text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"{line}:{column}"


def _parse(text: str, limits: Limits) -> Template | TemplateError:
    if len(text) > limits.max_template_chars:
        return error_at(
            text,
            limits.max_template_chars,
            ErrorCode.TEMPLATE_TOO_LARGE,
            f"the template is {len(text)} characters long; the limit is "
            f"{limits.max_template_chars}",
        )
    parser = Grammar(text, limits.max_depth)
    try:
        tokens, end = parser.template_tokens(0)
    except TooDeep as too_deep:
        return error_at(
            text,
            too_deep.position,
            ErrorCode.NESTING_TOO_DEEP,
            f"blocks are nested more than {limits.max_depth} deep",
        )
    if end != len(text):
        parser.fail(end, "text or '#{'")
        return syntax_error(parser)
    return Template(tokens, text)


@lru_cache(maxsize=1024)
def _parse_cached(text: str, limits: Limits) -> Template | TemplateError:
    return _parse(text, limits)


def try_parse(text: str, limits: Limits = DEFAULT_LIMITS) -> Template | TemplateError:
    """The template, or the first syntax error (small templates are cached: parsing is pure)."""
    if len(text) <= 16 * 1024:
        return _parse_cached(text, limits)
    return _parse(text, limits)


def parse(text: str, limits: Limits = DEFAULT_LIMITS) -> Template:
    """Parse a template; raise `TemplateSyntaxError` (with positions) when it is invalid."""
    parsed = try_parse(text, limits)
    if isinstance(parsed, TemplateError):
        raise TemplateSyntaxError([parsed])
    return parsed


def diagnose_block(
    text: str, position: int, limits: Limits = DEFAULT_LIMITS
) -> TemplateError | None:
    """Why the `#{if|unless|each|calc …}` at `position` did not parse as a block.

    Octostache quietly falls back to reading such text as a variable named `if X`; save-time
    validation wants the real reason instead.
    """
    parser = Grammar(text, limits.max_depth)
    try:
        parsed = parser.conditional(position) or parser.repetition(position)
        parsed = parsed or parser.calculation(position)
    except TooDeep as too_deep:
        return error_at(
            text, too_deep.position, ErrorCode.NESTING_TOO_DEEP, "blocks are nested too deep"
        )
    if parsed is not None:
        return None
    return syntax_error(parser)


def looks_like_block(symbol: Symbol) -> bool:
    first = symbol.steps[0] if symbol.steps else None
    return isinstance(first, Identifier) and first.text.lower().startswith(_BLOCK_KEYWORDS)


def parse_symbol_path(name: str) -> Symbol | None:
    """A variable name as a path (`Octopus.Action[Deploy].Name`), or None if it is not one."""
    return _parse_symbol_path(name)


@lru_cache(maxsize=8192)
def _parse_symbol_path(name: str) -> Symbol | None:
    parser = Grammar(name, DEFAULT_LIMITS.max_depth)
    try:
        parsed = parser.symbol(0)
    except TooDeep:
        return None
    if parsed is None or parsed[1] != len(name):
        return None
    return parsed[0]


_HASH = '#{ | Append \\"#\\"}'


def escape(text: str) -> str:
    """A template that evaluates to exactly `text`, whatever `text` holds.

    `##{` is the escape for `#{`, and `2m` hashes before `{` come from `2m-1` of them via
    `#` pairs and one `##{`. Octostache's text grammar cannot write an even run of hashes
    before `{`, so one of those hashes is produced by a filter instead.
    """
    if "#{" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("#", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        k = j
        while k < n and text[k] == "#":
            k += 1
        hashes = k - j
        if k < n and text[k] == "{":
            if hashes % 2 == 0:
                out.append(_HASH)
                hashes -= 1
            out.append("##" * (hashes // 2) + "##{")
            k += 1
        else:
            out.append("#" * hashes)
        i = k
    return "".join(out)
