"""Octostache's built-in filters (`#{Value | Filter option "option"}`).

A filter takes the value to its left (None when that is unresolved or absent, as in
`#{ | NowDate}`) and its options, and returns text or None; None makes the evaluator echo
the token's source, exactly as Octostache does for an unknown filter or a bad option.
Filter names are case-insensitive. Differences from .NET are listed in the README.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from urllib.parse import quote

from cephalo_common.variables import dotnet_format, markdown, regexes, uris
from cephalo_common.variables.errors import DEFAULT_LIMITS, Limits
from cephalo_common.variables.numbers import parse_double, parse_int

Options = Sequence[str]


def _system_now() -> datetime:
    return datetime.now(UTC)


def _local_zone() -> tzinfo:
    return datetime.now().astimezone().tzinfo or UTC


@dataclass(frozen=True)
class FilterContext:
    """What filters may depend on besides their input: the clock and the limits."""

    now: Callable[[], datetime] = _system_now
    local_zone: tzinfo = field(default_factory=_local_zone)
    limits: Limits = DEFAULT_LIMITS


Filter = Callable[[str | None, Options, FilterContext], str | None]


def _error(function: str, message: str, context: str | None = None) -> str:
    """Octostache's `Error.Format`: `[Replace error: …]`."""
    return f"[{function}{' ' + context if context else ''} error: {message}]"


# -- text ----------------------------------------------------------------------------------


def to_lower(argument: str | None, options: Options, _: FilterContext) -> str | None:
    return None if options or argument is None else argument.lower()


def to_upper(argument: str | None, options: Options, _: FilterContext) -> str | None:
    return None if options or argument is None else argument.upper()


def _encoding(options: Options, index: int = 0) -> str | None:
    name = options[index].lower() if len(options) > index else "utf8"
    return {"utf8": "utf-8", "utf-8": "utf-8", "unicode": "utf-16-le"}.get(name)


def to_base64(argument: str | None, options: Options, _: FilterContext) -> str | None:
    encoding = _encoding(options)
    if len(options) > 1 or argument is None or encoding is None:
        return None
    return base64.b64encode(argument.encode(encoding, "surrogatepass")).decode("ascii")


def from_base64(argument: str | None, options: Options, _: FilterContext) -> str | None:
    encoding = _encoding(options)
    if len(options) > 1 or argument is None or encoding is None:
        return None
    try:
        raw = base64.b64decode("".join(argument.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.decode(encoding, "replace")


def append(argument: str | None, options: Options, _: FilterContext) -> str | None:
    return None if not options else (argument or "") + "".join(options)


def prepend(argument: str | None, options: Options, _: FilterContext) -> str | None:
    return None if not options else "".join(options) + (argument or "")


def truncate(argument: str | None, options: Options, _: FilterContext) -> str | None:
    length = parse_int(options[0]) if options else None
    if argument is None or length is None or length < 0:
        return None
    return argument[:length] + "..." if length < len(argument) else argument


def trim(argument: str | None, options: Options, _: FilterContext) -> str | None:
    if argument is None:
        return None
    if not options:
        return argument.strip()
    return {"start": argument.lstrip(), "end": argument.rstrip()}.get(options[0].lower())


def substring(argument: str | None, options: Options, _: FilterContext) -> str | None:
    numbers = [parse_int(option) for option in options]
    if argument is None or not 1 <= len(numbers) <= 2 or any(n is None or n < 0 for n in numbers):
        return None
    start, length = (0, numbers[0]) if len(numbers) == 1 else (numbers[0], numbers[1])
    assert start is not None and length is not None
    if start + length > len(argument):
        return None
    return argument[start : start + length]


_INDENT = re.compile(r"((\d{1,3})?/)?(\d{1,3})")


def indent(argument: str | None, options: Options, _: FilterContext) -> str | None:
    if argument is None:
        return None
    if not argument:
        return ""
    if len(options) > 2:
        return None
    first = subsequent = "    "
    if len(options) == 2:
        first, subsequent = options
    elif len(options) == 1:
        first = subsequent = options[0]
        sizes = _INDENT.fullmatch(options[0])
        if sizes:
            separator, initial, rest = sizes.groups()
            numbers = [int(initial)] if initial else []
            if all(number <= 255 for number in [*numbers, int(rest)]):
                first = " " * int(initial) if initial else ("" if separator else " " * int(rest))
                subsequent = " " * int(rest)
    return first + argument.replace("\n", "\n" + subsequent)


def null(argument: str | None, options: Options, _: FilterContext) -> str | None:
    return None


# -- escaping ------------------------------------------------------------------------------

_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "/": "&#x2F;"}
_XML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}
_JSON = {'"': '\\"', "\r": "\\r", "\t": "\\t", "\n": "\\n", "\\": "\\\\"}
_YAML_DOUBLE = {"\r": "\\r", "\n": "\\n", "\t": "\\t", "\\": "\\\\", '"': '\\"'}
_PROPERTIES = {"\\": "\\\\", "\r": "\\r", "\n": "\\n", "\t": "\\t"}
_NEWLINES = re.compile(r"(?:\r?\n)+")


def _map(text: str, table: dict[str, str]) -> str:
    return "".join(table.get(char, char) for char in text)


def _unicode_escape(char: str) -> str:
    return "".join(f"\\u{unit:04x}" for unit in _utf16_units(char))


def _utf16_units(char: str) -> list[int]:
    data = char.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)]


def _escaper(table: dict[str, str]) -> Filter:
    def escape(argument: str | None, options: Options, _: FilterContext) -> str | None:
        return None if options or argument is None else _map(argument, table)

    return escape


def yaml_single_quote_escape(
    argument: str | None, options: Options, _: FilterContext
) -> str | None:
    if options or argument is None:
        return None
    doubled = _NEWLINES.sub(
        lambda m: ("\r\n" if m.group().startswith("\r") else "\n") + m.group(), argument
    )
    return doubled.replace("'", "''")


def yaml_double_quote_escape(
    argument: str | None, options: Options, _: FilterContext
) -> str | None:
    if options or argument is None:
        return None
    return "".join(
        _YAML_DOUBLE.get(c, c if " " <= c <= "~" else _unicode_escape(c)) for c in argument
    )


def _properties(char: str) -> str:
    if char in _PROPERTIES:
        return _PROPERTIES[char]
    return char if ord(char) < 0xFF else _unicode_escape(char)


def properties_key_escape(argument: str | None, options: Options, _: FilterContext) -> str | None:
    if options or argument is None:
        return None
    return "".join({" ": "\\ ", ":": "\\:", "=": "\\="}.get(c) or _properties(c) for c in argument)


def properties_value_escape(argument: str | None, options: Options, _: FilterContext) -> str | None:
    if options or argument is None:
        return None
    return "".join("\\ " if c == " " and i == 0 else _properties(c) for i, c in enumerate(argument))


def _uri_escaper(safe: str) -> Filter:
    def escape(argument: str | None, options: Options, _: FilterContext) -> str | None:
        if options or argument is None:
            return None
        return quote(argument, safe=safe, encoding="utf-8", errors="surrogatepass")

    return escape


def markdown_to_html(argument: str | None, options: Options, _: FilterContext) -> str | None:
    return None if options or argument is None else markdown.to_html(argument) + "\n"


# -- comparison and regular expressions ----------------------------------------------------


def _comparison(test: Callable[[str, str], bool]) -> Filter:
    def compare(argument: str | None, options: Options, _: FilterContext) -> str | None:
        if argument is None or len(options) != 1:
            return None
        return "true" if test(argument, options[0]) else "false"

    return compare


def _regex(function: str, pattern: str, text: str, context: FilterContext) -> re.Pattern[str] | str:
    limits = context.limits
    if len(pattern) > limits.max_regex_pattern_chars:
        return _error(
            function, f"the pattern is longer than {limits.max_regex_pattern_chars} characters"
        )
    if len(text) > limits.max_regex_input_chars:
        return _error(
            function, f"the input is longer than {limits.max_regex_input_chars} characters"
        )
    try:
        return regexes.compile_dotnet(pattern)
    except (regexes.RegexRefused, re.error) as refused:
        return _error(function, str(refused))


def match(argument: str | None, options: Options, context: FilterContext) -> str | None:
    if argument is None or len(options) != 1:
        return None
    compiled = _regex("Match", options[0], argument, context)
    if isinstance(compiled, str):
        return compiled
    return "true" if compiled.search(argument) else "false"


def replace(argument: str | None, options: Options, context: FilterContext) -> str | None:
    if argument is None or not options:
        return None
    compiled = _regex("Replace", options[0], argument, context)
    if isinstance(compiled, str):
        return compiled
    replacement = options[1] if len(options) > 1 else ""
    return compiled.sub(lambda found: regexes.expand_replacement(replacement, found), argument)


# -- dates and numbers ---------------------------------------------------------------------


def _now_text(
    moment: datetime, options: Options, argument: str | None, context: FilterContext
) -> str | None:
    if argument is not None or len(options) > 1:
        return None
    return dotnet_format.format_date(moment, options[0] if options else "O", context.local_zone)


def now_date(argument: str | None, options: Options, context: FilterContext) -> str | None:
    local = context.now().astimezone(context.local_zone).replace(tzinfo=None)
    return _now_text(local, options, argument, context)


def now_date_utc(argument: str | None, options: Options, context: FilterContext) -> str | None:
    return _now_text(context.now().astimezone(UTC), options, argument, context)


def _shift(step: Callable[[float], timedelta]) -> Filter:
    def shift(argument: str | None, options: Options, context: FilterContext) -> str | None:
        amount = parse_double(options[0]) if len(options) == 1 else None
        moment = dotnet_format.parse_date(argument) if argument is not None else None
        if amount is None or moment is None:
            return None
        try:
            return dotnet_format.format_date(moment + step(amount), "O", context.local_zone)
        except (OverflowError, ValueError):
            return None

    return shift


def add_months(argument: str | None, options: Options, context: FilterContext) -> str | None:
    months = parse_int(options[0]) if len(options) == 1 else None
    moment = dotnet_format.parse_date(argument) if argument is not None else None
    if months is None or moment is None:
        return None
    total = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        return None
    for day in range(moment.day, 27, -1):
        try:
            shifted = moment.replace(year=year, month=month + 1, day=day)
            return dotnet_format.format_date(shifted, "O", context.local_zone)
        except ValueError:
            continue
    return dotnet_format.format_date(
        moment.replace(year=year, month=month + 1), "O", context.local_zone
    )


def format_value(argument: str | None, options: Options, context: FilterContext) -> str | None:
    """`Format "N2"`, `Format yyyy`, or typed: `Format Int32|Double|Decimal|DateTime|DateTimeOffset f`."""
    if argument is None or not options:
        return None
    zone = context.local_zone
    if len(options) == 1:
        number = dotnet_format.parse_decimal(argument)
        if number is not None:
            return dotnet_format.format_number(number, options[0])
        moment = dotnet_format.parse_date(argument)
        if moment is None:
            return None
        return dotnet_format.format_date(_with_offset(moment, zone), options[0], zone)
    if len(options) != 2:
        return None
    kind, pattern = options[0].lower(), options[1]
    value: int | float | Decimal | None
    if kind in ("int", "int32"):
        value = parse_int(argument)
    elif kind == "double":
        value = parse_double(argument)
    elif kind == "decimal":
        value = dotnet_format.parse_decimal(argument)
    elif kind in ("date", "datetime", "datetimeoffset"):
        moment = dotnet_format.parse_date(argument)
        if moment is None:
            return None
        if kind == "datetimeoffset":
            moment = _with_offset(moment, zone)
        return dotnet_format.format_date(moment, pattern, zone)
    else:
        return None
    return None if value is None else dotnet_format.format_number(value, pattern)


def _with_offset(moment: datetime, zone: tzinfo) -> datetime:
    """A DateTimeOffset: a value without a zone is taken as local time."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


# -- versions ------------------------------------------------------------------------------

_VERSION = re.compile(
    r"^\s*(?:\s*(?P<prefix>v|V)?\s*(?P<major>\d+\b)\s*(?:\.\s*(?P<minor>\d+\b)\s*)?"
    r"(?:\.\s*(?P<patch>\d+\b)\s*)?(?:\.\s*(?P<revision>\d+\b)\s*)?)?"
    r"(?:[.\-_\\])?(?P<prerelease>(?P<prefix2>[A-Za-z0-9]*?)"
    r"(?:[.\-_\\](?P<counter>[A-Za-z0-9.\-_\\]*?)?)?)?"
    r"(?:\+(?P<meta>[A-Za-z0-9_\-.\\+]*?))?\s*$",
    re.ASCII,
)


def _version_part(group: str) -> Filter:
    """Octopus.Versioning's permissive parser: `v1.2.3.4-branch.1+meta`."""

    def part(argument: str | None, options: Options, _: FilterContext) -> str | None:
        if argument is None or not argument.strip():
            return None
        found = _VERSION.match(argument)
        if found is None:
            return None
        value = found.group(group) or ""
        if group in ("major", "minor", "patch", "revision"):
            number = int(value or 0)
            return str(number) if number < 2**31 else None
        return value

    return part


# -- hashes --------------------------------------------------------------------------------


_HASH_ENCODINGS = ("utf8", "utf-8", "unicode", "base64")


def _hash_options(options: Options) -> tuple[int | None, str | None]:
    """Octostache's `HashOptions`: `[size] [encoding]` or `[encoding] [size]`, size > 0."""
    if not options:
        return None, "utf8"
    first = parse_int(options[0])
    if first is not None and first > 0:
        if len(options) == 1:
            return first, "utf8"
        encoding = options[1].lower()
        return first, encoding if encoding in _HASH_ENCODINGS else None
    encoding = options[0].lower()
    if encoding not in _HASH_ENCODINGS:
        return None, None
    if len(options) == 1:
        return None, encoding
    second = parse_int(options[1])
    return (second, encoding) if second is not None and second > 0 else (None, None)


def _hash(algorithm: str) -> Filter:
    """`Md5 [size] [encoding]` (either order): hex digest, optionally its first `size` bytes."""

    def digest(argument: str | None, options: Options, _: FilterContext) -> str | None:
        if argument is None or len(options) > 2:
            return None
        size, encoding = _hash_options(options)
        if encoding is None:
            return None
        try:
            if encoding == "base64":
                data = base64.b64decode("".join(argument.split()), validate=True)
            else:
                data = argument.encode(
                    "utf-16-le" if encoding == "unicode" else "utf-8", "surrogatepass"
                )
        except (binascii.Error, ValueError):
            return None
        raw = hashlib.new(algorithm, data).digest()
        return raw[: size or len(raw)].hex()

    return digest


def uri_part(argument: str | None, options: Options, _: FilterContext) -> str | None:
    if argument is None:
        return None
    if not options:
        return "[UriPart error: no argument given]"
    return uris.uri_part(argument, options[0])


FILTERS: dict[str, Filter] = {
    "tolower": to_lower,
    "toupper": to_upper,
    "tobase64": to_base64,
    "frombase64": from_base64,
    "htmlescape": _escaper(_HTML),
    "xmlescape": _escaper(_XML),
    "jsonescape": _escaper(_JSON),
    "uriescape": _uri_escaper(":/?#[]@!$&'()*+,;="),
    "uridataescape": _uri_escaper(""),
    "yamlsinglequoteescape": yaml_single_quote_escape,
    "yamldoublequoteescape": yaml_double_quote_escape,
    "propertieskeyescape": properties_key_escape,
    "propertiesvalueescape": properties_value_escape,
    "markdown": markdown_to_html,
    "markdowntohtml": markdown_to_html,
    "nowdate": now_date,
    "nowdateutc": now_date_utc,
    "addseconds": _shift(lambda amount: timedelta(seconds=amount)),
    "addminutes": _shift(lambda amount: timedelta(minutes=amount)),
    "addhours": _shift(lambda amount: timedelta(hours=amount)),
    "adddays": _shift(lambda amount: timedelta(days=amount)),
    "addweeks": _shift(lambda amount: timedelta(weeks=amount)),
    "addmonths": add_months,
    "format": format_value,
    "match": match,
    "replace": replace,
    "startswith": _comparison(str.startswith),
    "endswith": _comparison(str.endswith),
    "contains": _comparison(lambda text, part: part in text),
    "substring": substring,
    "truncate": truncate,
    "trim": trim,
    "indent": indent,
    "uripart": uri_part,
    "versionmajor": _version_part("major"),
    "versionminor": _version_part("minor"),
    "versionpatch": _version_part("patch"),
    "versionrevision": _version_part("revision"),
    "versionprerelease": _version_part("prerelease"),
    "versionprereleaseprefix": _version_part("prefix2"),
    "versionprereleasecounter": _version_part("counter"),
    "versionmetadata": _version_part("meta"),
    "append": append,
    "prepend": prepend,
    "md5": _hash("md5"),
    "sha1": _hash("sha1"),
    "sha256": _hash("sha256"),
    "sha384": _hash("sha384"),
    "sha512": _hash("sha512"),
    "null": null,
}


def is_known(name: str) -> bool:
    return name.lower() in FILTERS


def invoke(name: str, argument: str | None, options: Options, context: FilterContext) -> str | None:
    function = FILTERS.get(name.lower())
    return None if function is None else function(argument, options, context)
