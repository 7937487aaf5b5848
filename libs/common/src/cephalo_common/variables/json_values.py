"""JSON-valued variables, read as leniently as Newtonsoft.Json reads them for Octostache.

Octostache walks `#{Config.Sizes[0].Price}` into a JSON value and iterates JSON arrays and
objects in `#{each}`. Newtonsoft accepts unquoted property names, single-quoted strings,
comments and trailing commas, and so does this reader; values come back as .NET would
print them (`True`, `12`, `15.21`, compact JSON for objects and arrays).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import TypeAlias

from cephalo_common.variables.numbers import format_double

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_BARE_NAME = re.compile(r"[A-Za-z0-9_$\-]+")
_ESCAPES = {
    '"': '"',
    "'": "'",
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
_MAX_DEPTH = 64


class _Invalid(Exception):
    pass


class _Reader:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def skip(self) -> None:
        s = self.s
        while self.i < len(s):
            if s[self.i].isspace():
                self.i += 1
            elif s.startswith("//", self.i):
                end = s.find("\n", self.i)
                self.i = len(s) if end < 0 else end + 1
            elif s.startswith("/*", self.i):
                end = s.find("*/", self.i + 2)
                if end < 0:
                    raise _Invalid
                self.i = end + 2
            else:
                return

    def value(self, depth: int) -> JsonValue:
        if depth > _MAX_DEPTH:
            raise _Invalid
        self.skip()
        if self.i >= len(self.s):
            raise _Invalid
        char = self.s[self.i]
        if char == "{":
            return self.object(depth)
        if char == "[":
            return self.array(depth)
        if char in "\"'":
            return self.string()
        for word, result in (("true", True), ("false", False), ("null", None)):
            if self.s.startswith(word, self.i):
                self.i += len(word)
                return result
        match = _NUMBER.match(self.s, self.i)
        if match is None:
            raise _Invalid
        self.i = match.end()
        text = match.group()
        return float(text) if any(c in text for c in ".eE") else int(text)

    def string(self) -> str:
        s = self.s
        quote = s[self.i]
        self.i += 1
        out: list[str] = []
        while self.i < len(s):
            char = s[self.i]
            if char == quote:
                self.i += 1
                return "".join(out)
            if char == "\\":
                escape = s[self.i + 1 : self.i + 2]
                if escape == "u":
                    digits = s[self.i + 2 : self.i + 6]
                    if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                        raise _Invalid
                    out.append(chr(int(digits, 16)))
                    self.i += 6
                    continue
                if escape not in _ESCAPES:
                    raise _Invalid
                out.append(_ESCAPES[escape])
                self.i += 2
                continue
            out.append(char)
            self.i += 1
        raise _Invalid

    def name(self) -> str:
        self.skip()
        if self.i < len(self.s) and self.s[self.i] in "\"'":
            return self.string()
        match = _BARE_NAME.match(self.s, self.i)
        if match is None:
            raise _Invalid
        self.i = match.end()
        return match.group()

    def object(self, depth: int) -> dict[str, JsonValue]:
        self.i += 1
        result: dict[str, JsonValue] = {}
        while True:
            self.skip()
            if self.s.startswith("}", self.i):
                self.i += 1
                return result
            key = self.name()
            self.skip()
            if not self.s.startswith(":", self.i):
                raise _Invalid
            self.i += 1
            result[key] = self.value(depth + 1)
            self.skip()
            if self.s.startswith(",", self.i):
                self.i += 1
            elif not self.s.startswith("}", self.i):
                raise _Invalid

    def array(self, depth: int) -> list[JsonValue]:
        self.i += 1
        result: list[JsonValue] = []
        while True:
            self.skip()
            if self.s.startswith("]", self.i):
                self.i += 1
                return result
            result.append(self.value(depth + 1))
            self.skip()
            if self.s.startswith(",", self.i):
                self.i += 1
            elif not self.s.startswith("]", self.i):
                raise _Invalid


_NOT_JSON = object()


@lru_cache(maxsize=256)
def _read(text: str) -> object:
    reader = _Reader(text)
    try:
        value = reader.value(0)
        reader.skip()
    except (_Invalid, IndexError, ValueError, OverflowError):
        return _NOT_JSON
    return value if reader.i == len(text) else _NOT_JSON


def read_container(text: str) -> list[JsonValue] | dict[str, JsonValue] | None:
    """The JSON array or object `text` holds, or None (scalars are not walkable)."""
    stripped = text.lstrip()
    if not stripped or stripped[0] not in "[{":
        return None
    value = _read(text)
    return value if isinstance(value, list | dict) else None


def as_text(value: JsonValue) -> str:
    """A JSON value as Octostache prints it: null is empty, containers are compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def child(container: list[JsonValue] | dict[str, JsonValue], key: str) -> str | None:
    """`Config.Key` / `Config[0]` into a JSON container (missing keys read as empty)."""
    if isinstance(container, dict):
        return as_text(container.get(key))
    stripped = key.strip()
    if not stripped.lstrip("+-").isdigit() or not stripped.isascii():
        return None
    index = int(stripped)
    return as_text(container[index]) if 0 <= index < len(container) else ""
