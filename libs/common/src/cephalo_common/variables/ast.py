"""The parsed form of an Octostache template.

`str(node)` gives Octostache's canonical text of a node (its `ToString()`): that is what
Octostache echoes for a token it cannot resolve, so the evaluator echoes exactly that.
Positions are 0-based offsets into the text the node was parsed from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cephalo_common.variables.numbers import format_double


def fold(name: str) -> str:
    """The case-insensitive key of a name or index."""
    return name.casefold()


@dataclass(frozen=True, slots=True)
class Identifier:
    text: str
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Indexer:
    """`[Web01]` (a literal index) or `[#{Machine}]` (an index looked up first)."""

    index: str | None
    symbol: Symbol | None = None
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return "[" + (f"#{{{self.symbol}}}" if self.symbol is not None else self.index or "") + "]"


Step = Identifier | Indexer


@dataclass(frozen=True, slots=True)
class Symbol:
    """A dotted/bracketed path such as `Octopus.Action[Deploy].Output.Url`."""

    steps: tuple[Step, ...]
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        parts: list[str] = []
        for number, step in enumerate(self.steps):
            if isinstance(step, Identifier) and number > 0:
                parts.append(".")
            parts.append(str(step))
        return "".join(parts)


@dataclass(frozen=True, slots=True)
class FilterCall:
    """`argument | Function option option`; the argument may itself be a call."""

    function: str
    argument: Expression
    options: tuple[Token, ...]
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        text = f"{self.argument} | {self.function}"
        if self.options:
            text += " " + " ".join(
                f'"{option}"' if isinstance(option, Text) else str(option)
                for option in self.options
            )
        return text


Expression = Symbol | FilterCall


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return self.text.replace("#{", "##{")


@dataclass(frozen=True, slots=True)
class Substitution:
    expression: Expression
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return f"#{{{self.expression}}}"


@dataclass(frozen=True, slots=True)
class Condition:
    """`left`, `left == right`, `left != "literal"` (a literal is always kept on the right)."""

    left: Expression
    equal: bool | None = None
    right: Expression | None = None
    literal: str | None = None

    def equality_text(self) -> str:
        if self.equal is None:
            return ""
        operator = "==" if self.equal else "!="
        if self.literal is not None:
            return f' {operator} "{self.literal}" '
        return f" {operator} {self.right} "


@dataclass(frozen=True, slots=True)
class Conditional:
    """`#{if}`/`#{unless}`; an `unless` is stored with its branches swapped, as Octostache does."""

    condition: Condition
    truthy: tuple[Token, ...]
    falsy: tuple[Token, ...]
    keyword: str = "if"
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        text = f"#{{if {self.condition.left}{self.condition.equality_text()}}}"
        text += "".join(str(token) for token in self.truthy)
        if self.falsy:
            text += "#{else}" + "".join(str(token) for token in self.falsy)
        return text + "#{/if}"


@dataclass(frozen=True, slots=True)
class Repetition:
    enumerator: Identifier
    collection: Symbol
    body: tuple[Token, ...]
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        body = "".join(str(token) for token in self.body)
        return f"#{{each {self.enumerator} in {self.collection}}}{body}#{{/each}}"


@dataclass(frozen=True, slots=True)
class CalcConstant:
    value: float

    def __str__(self) -> str:
        return format_double(self.value)


@dataclass(frozen=True, slots=True)
class CalcVariable:
    symbol: Symbol

    def __str__(self) -> str:
        return str(self.symbol)


@dataclass(frozen=True, slots=True)
class CalcOperation:
    left: CalcNode
    operator: str
    right: CalcNode

    def __str__(self) -> str:
        return f"{self.left}{self.operator}{self.right}"


CalcNode = CalcConstant | CalcVariable | CalcOperation


@dataclass(frozen=True, slots=True)
class Calculation:
    expression: CalcNode
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return f"#{{{self.expression}}}"


Token = Text | Substitution | Conditional | Repetition | Calculation


@dataclass(frozen=True, slots=True)
class Template:
    tokens: tuple[Token, ...]
    source: str = field(default="", compare=False, repr=False)

    def __str__(self) -> str:
        return "".join(str(token) for token in self.tokens)
