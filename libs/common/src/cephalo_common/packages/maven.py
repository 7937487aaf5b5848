"""Maven's `ComparableVersion` (the maven-artifact 3.x algorithm Octopus.Versioning ports).

A version is split into items: numbers, qualifiers and sub-lists (a `-` followed by a
digit starts a sub-list, so `1-1` differs from `1.1`). Trailing "null" items (`0`, `""`,
`ga`, `final`, empty lists) are dropped, so `1.0.0 == 1` and `1-ga == 1`. Qualifiers order
`alpha < beta < milestone < rc < snapshot < "" < sp < anything else (lexically)`;
`a1`, `b1`, `m1` mean `alpha-1`, `beta-1`, `milestone-1`; `cr` means `rc`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
ALIASES = {"ga": "", "final": "", "cr": "rc"}
RELEASE_VERSION_INDEX = str(QUALIFIERS.index(""))
SHORT_QUALIFIERS = {"a": "alpha", "b": "beta", "m": "milestone"}


def comparable_qualifier(qualifier: str) -> str:
    """Known qualifiers become their index; unknown ones sort after them, lexically."""
    if qualifier in QUALIFIERS:
        return str(QUALIFIERS.index(qualifier))
    return f"{len(QUALIFIERS)}-{qualifier}"


@dataclass(frozen=True)
class IntItem:
    value: int

    def is_null(self) -> bool:
        return self.value == 0

    def compare(self, other: Item | None) -> int:
        if other is None:
            return 0 if self.value == 0 else 1
        if isinstance(other, IntItem):
            return (self.value > other.value) - (self.value < other.value)
        return 1

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class StringItem:
    value: str

    @classmethod
    def of(cls, value: str, *, followed_by_digit: bool) -> StringItem:
        if followed_by_digit and value in SHORT_QUALIFIERS:
            value = SHORT_QUALIFIERS[value]
        return cls(ALIASES.get(value, value))

    def is_null(self) -> bool:
        return comparable_qualifier(self.value) == RELEASE_VERSION_INDEX

    def compare(self, other: Item | None) -> int:
        mine = comparable_qualifier(self.value)
        if other is None:
            return _sign(mine, RELEASE_VERSION_INDEX)
        if isinstance(other, StringItem):
            return _sign(mine, comparable_qualifier(other.value))
        return -1

    def __str__(self) -> str:
        return self.value


class ListItem(list["Item"]):
    def is_null(self) -> bool:
        return len(self) == 0

    def normalize(self) -> None:
        while self and self[-1].is_null():
            self.pop()

    def compare(self, other: Item | None) -> int:
        if other is None:
            return 0 if not self else self[0].compare(None)
        if isinstance(other, IntItem):
            return -1
        if isinstance(other, StringItem):
            return 1
        for index in range(max(len(self), len(other))):
            left = self[index] if index < len(self) else None
            right = other[index] if index < len(other) else None
            if left is not None:
                result = left.compare(right)
            else:
                assert right is not None
                result = -right.compare(left)
            if result:
                return result
        return 0

    def __str__(self) -> str:
        return "(" + ",".join(str(item) for item in self) + ")"


Item: TypeAlias = IntItem | StringItem | ListItem


def _sign(left: str, right: str) -> int:
    return (left > right) - (left < right)


def _item(is_digit: bool, text: str) -> Item:
    return IntItem(int(text)) if is_digit else StringItem.of(text, followed_by_digit=False)


def parse_items(version: str) -> ListItem:
    """The item tree of `version`, normalized (a one-to-one port of `parseVersion`)."""
    text = version.lower()
    items = ListItem()
    current = items
    stack: list[ListItem] = [items]
    is_digit = False
    start = 0
    for index, character in enumerate(text):
        if character in ".-":
            current.append(IntItem(0) if index == start else _item(is_digit, text[start:index]))
            start = index + 1
            if character == "-" and is_digit:
                current.normalize()
                if index + 1 < len(text) and text[index + 1].isdigit():
                    child = ListItem()
                    current.append(child)
                    current = child
                    stack.append(child)
        elif character.isdigit():
            if not is_digit and index > start:
                current.append(StringItem.of(text[start:index], followed_by_digit=True))
                start = index
            is_digit = True
        else:
            if is_digit and index > start:
                current.append(_item(True, text[start:index]))
                start = index
            is_digit = False
    if len(text) > start:
        current.append(_item(is_digit, text[start:]))
    while stack:
        stack.pop().normalize()
    return items


class ComparableVersion:
    def __init__(self, version: str) -> None:
        self.value = version
        self.items = parse_items(version)
        self.canonical = str(self.items)

    def compare(self, other: ComparableVersion) -> int:
        return self.items.compare(other.items)

    def __repr__(self) -> str:
        return f"ComparableVersion({self.value!r})"


_LEADING_NUMBERS = re.compile(r"^(\d+)(?:\.(\d+)(?:\.(\d+))?)?(.*)$", re.ASCII | re.DOTALL)
_BUILD_NUMBER = re.compile(r"^-(\d+)(.*)$", re.ASCII | re.DOTALL)


def qualifier(version: str) -> str:
    """The qualifier Octopus's Maven parser extracts (`1.0-SNAPSHOT` → `SNAPSHOT`): what a
    channel's pre-release tag rule is matched against."""
    match = _LEADING_NUMBERS.match(version)
    if match is None:
        return version
    rest = match.group(4)
    build = _BUILD_NUMBER.match(rest)
    if build is not None:
        return build.group(2)
    if rest[:1] in (".", "-"):
        return rest[1:]
    return rest
