"""Dates and numbers read and written with .NET format strings, in the invariant culture.

Octostache's `Format`, `NowDate` and `Add*` filters call .NET's `ToString(format)`; users
write .NET format strings (`yyyy-MM-dd`, `HH:mm`, `N2`, `0.00`), so those are what this
module understands. Culture is always invariant (English names, `¤` currency, `.`
decimal point): a server's culture is not something a deployment should depend on.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from cephalo_common.variables.numbers import format_double

MONTHS = [
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
]  # fmt: skip
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTH_NUMBERS = {name[:3].lower(): number for number, name in enumerate(MONTHS, 1)}

_ISO = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?"
)
_SLASHED_YMD = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_SLASHED_MDY = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?"
)
_NAMED = re.compile(
    r"(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})[A-Za-z]*\s+(\d{4})"
    r"(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*(GMT|UTC|Z)?"
)
_DECIMAL = re.compile(r"\s*[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d*)?\s*")


def parse_date(text: str) -> datetime | None:
    """`DateTime.TryParse`: ISO 8601, `yyyy/MM/dd`, `MM/dd/yyyy`, `22 May 2030`, RFC 1123.

    Naive means "unspecified" (no zone); `Z` gives UTC; an explicit offset is kept.
    """
    text = text.strip()
    try:
        if match := _ISO.fullmatch(text):
            year, month, day, hour, minute, second, fraction, zone = match.groups()
            micro = int((fraction or "0")[:6].ljust(6, "0"))
            moment = datetime(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                int(second or 0), micro,
            )  # fmt: skip
            return moment.replace(tzinfo=_zone(zone)) if zone else moment
        if match := _SLASHED_YMD.fullmatch(text):
            year, month, day, hour, minute, second = match.groups()
            return datetime(int(year), int(month), int(day), *_clock(hour, minute, second))
        if match := _SLASHED_MDY.fullmatch(text):
            month, day, year, hour, minute, second, meridiem = match.groups()
            hours = int(hour or 0)
            if meridiem:
                hours = hours % 12 + (12 if meridiem.lower() == "pm" else 0)
            clock = (hours, int(minute or 0), int(second or 0))
            return datetime(int(year), int(month), int(day), *clock)
        if match := _NAMED.fullmatch(text):
            day, month_name, year, hour, minute, second, zone = match.groups()
            month = _MONTH_NUMBERS.get(month_name.lower())
            if month is None:
                return None
            moment = datetime(int(year), month, int(day), *_clock(hour, minute, second))
            return moment.replace(tzinfo=UTC) if zone else moment
    except ValueError:
        return None
    return None


def _clock(hour: str | None, minute: str | None, second: str | None) -> tuple[int, int, int]:
    return int(hour or 0), int(minute or 0), int(second or 0)


def _zone(text: str) -> tzinfo:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:4] or 0)
    return timezone(sign * timedelta(minutes=minutes))


def parse_decimal(text: str) -> Decimal | None:
    """`decimal.TryParse` (NumberStyles.Number): sign, thousands separators, a point."""
    if not _DECIMAL.fullmatch(text) or not any(c.isdigit() for c in text):
        return None
    try:
        return Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        return None


# -- dates -------------------------------------------------------------------------------

_STANDARD_DATE = {
    "d": "MM/dd/yyyy",
    "D": "dddd, dd MMMM yyyy",
    "f": "dddd, dd MMMM yyyy HH:mm",
    "F": "dddd, dd MMMM yyyy HH:mm:ss",
    "g": "MM/dd/yyyy HH:mm",
    "G": "MM/dd/yyyy HH:mm:ss",
    "M": "MMMM dd",
    "m": "MMMM dd",
    "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
    "t": "HH:mm",
    "T": "HH:mm:ss",
    "Y": "yyyy MMMM",
    "y": "yyyy MMMM",
    "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
}
_UTC_DATE = {
    "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
    "U": "dddd, dd MMMM yyyy HH:mm:ss",
}
_DATE_LETTERS = "dfFghHKmMstyz"


def format_date(moment: datetime, pattern: str, local_zone: tzinfo = UTC) -> str | None:
    """`DateTime.ToString(pattern)`; None where .NET throws a FormatException."""
    if len(pattern) == 1:
        if pattern in _UTC_DATE:
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC)
            return _custom_date(moment, _UTC_DATE[pattern], local_zone)
        if pattern not in _STANDARD_DATE:
            return None
        pattern = _STANDARD_DATE[pattern]
    return _custom_date(moment, pattern, local_zone)


def _custom_date(moment: datetime, pattern: str, local_zone: tzinfo) -> str | None:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char in "'\"":
            end = pattern.find(char, i + 1)
            if end < 0:
                return None
            out.append(pattern[i + 1 : end])
            i = end + 1
            continue
        if char == "\\":
            out.append(pattern[i + 1 : i + 2])
            i += 2
            continue
        if char == "%" and i + 1 < n:
            part = _date_part(moment, pattern[i + 1], 1, local_zone)
            if part is None:
                return None
            out.append(part)
            i += 2
            continue
        if char not in _DATE_LETTERS:
            out.append(char)
            i += 1
            continue
        run = i
        while run < n and pattern[run] == char:
            run += 1
        part = _date_part(moment, char, run - i, local_zone)
        if part is None:
            return None
        if char == "F" and not part and out and out[-1].endswith("."):
            out[-1] = out[-1][:-1]
        out.append(part)
        i = run
    return "".join(out)


def _date_part(moment: datetime, letter: str, count: int, local_zone: tzinfo) -> str | None:
    if letter in "fF":
        if count > 7:
            return None
        digits = f"{moment.microsecond:06d}0"[:count]
        return digits.rstrip("0") if letter == "F" else digits
    if letter in "zK":
        return _offset(moment, letter, count, local_zone)
    if letter == "d":
        return _day(moment, count)
    if letter == "M":
        return _month(moment, count)
    if letter == "y":
        return _year(moment, count)
    if letter == "t":
        return ("AM" if moment.hour < 12 else "PM")[: 1 if count == 1 else 2]
    if letter == "g":
        return "A.D."
    numbers = {
        "h": (moment.hour % 12) or 12,
        "H": moment.hour,
        "m": moment.minute,
        "s": moment.second,
    }
    return _pad(numbers[letter], count)


def _pad(value: int, count: int) -> str:
    return f"{value:0{min(count, 2)}d}"


def _day(moment: datetime, count: int) -> str:
    if count <= 2:
        return _pad(moment.day, count)
    name = DAYS[moment.weekday()]
    return name[:3] if count == 3 else name


def _month(moment: datetime, count: int) -> str:
    if count <= 2:
        return _pad(moment.month, count)
    name = MONTHS[moment.month - 1]
    return name[:3] if count == 3 else name


def _year(moment: datetime, count: int) -> str:
    if count == 1:
        return str(moment.year % 100)
    if count == 2:
        return f"{moment.year % 100:02d}"
    return f"{moment.year:0{count}d}"


def _offset(moment: datetime, letter: str, count: int, local_zone: tzinfo) -> str:
    offset = moment.utcoffset()
    if letter == "K":
        if offset is None:
            return ""
        if moment.tzinfo is UTC:
            return "Z"
    if offset is None:
        offset = moment.replace(tzinfo=local_zone).utcoffset() or timedelta()
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    if letter == "K" or count >= 3:
        return f"{sign}{hours:02d}:{rest:02d}"
    return f"{sign}{hours:02d}" if count == 2 else f"{sign}{hours}"


# -- numbers -----------------------------------------------------------------------------

_STANDARD_NUMBER = re.compile(r"([A-Za-z])(\d{0,2})")


def format_number(value: Decimal | int | float, pattern: str) -> str | None:
    """`ToString(pattern)` for int, double or decimal; None where .NET throws."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return format_double(value)
    match = _STANDARD_NUMBER.fullmatch(pattern)
    if match:
        return _standard_number(value, match.group(1), match.group(2))
    return _custom_number(value, pattern)


def _exact(value: Decimal | int | float) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(value)


def _fixed(value: Decimal, digits: int, grouped: bool = False) -> str:
    rounded = value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    text = f"{abs(rounded):,.{digits}f}" if grouped else f"{abs(rounded):.{digits}f}"
    return text


def _standard_number(value: Decimal | int | float, letter: str, precision: str) -> str | None:
    exact = _exact(value)
    negative = exact < 0
    upper = letter.upper()
    digits = int(precision) if precision else None
    if upper == "C":
        body = "¤" + _fixed(exact, 2 if digits is None else digits, grouped=True)
        return f"({body})" if negative and body.strip("¤0.,") else body
    if upper == "D":
        if not isinstance(value, int):
            return None
        return ("-" if negative else "") + f"{abs(value):0{digits or 1}d}"
    if upper == "X":
        if not isinstance(value, int):
            return None
        text = f"{value & 0xFFFFFFFF if value < 0 else value:0{digits or 1}X}"
        return text if letter == "X" else text.lower()
    if upper in "FNP":
        scaled = exact * 100 if upper == "P" else exact
        body = _fixed(scaled, 2 if digits is None else digits, grouped=upper != "F")
        sign = "-" if negative and body.strip("0.,") else ""
        return f"{sign}{body} %" if upper == "P" else sign + body
    if upper == "E":
        places = 6 if digits is None else digits
        text = f"{exact:.{places}E}"
        mantissa, exponent = text.split("E")
        power = int(exponent)
        result = f"{mantissa}E{'-' if power < 0 else '+'}{abs(power):03d}"
        return result if letter == "E" else result.replace("E", "e")
    if upper == "G":
        return _general(value, exact, digits, letter)
    if upper == "R" and isinstance(value, float):
        return format_double(value)
    return None


def _general(value: Decimal | int | float, exact: Decimal, digits: int | None, letter: str) -> str:
    if digits is None or digits == 0:
        if isinstance(value, float):
            return format_double(value)
        return str(value)
    text = f"{exact:.{digits}G}"
    if "E" in text:
        mantissa, exponent = text.split("E")
        power = int(exponent)
        text = f"{mantissa}E{'-' if power < 0 else '+'}{abs(power):02d}"
    return text if letter == "G" else text.replace("E", "e")


def _custom_number(value: Decimal | int | float, pattern: str) -> str | None:
    """Custom formats: `0 # . , % ‰`, quoted or escaped literals, `;` sections."""
    sections = _split_sections(pattern)
    exact = _exact(value)
    section = sections[0]
    if exact < 0 and len(sections) > 1 and sections[1]:
        section, exact = sections[1], -exact
    elif exact == 0 and len(sections) > 2 and sections[2]:
        section = sections[2]
    literal_prefix, number, literal_suffix = _number_span(section)
    if "%" in section:
        exact *= 100
    if "‰" in section:
        exact *= 1000
    if not number:
        return literal_prefix + literal_suffix
    point = number.find(".")
    integer_part = number if point < 0 else number[:point]
    fraction_part = "" if point < 0 else number[point + 1 :]
    while integer_part.endswith(","):
        integer_part = integer_part[:-1]
        exact /= 1000
    places = sum(c in "0#" for c in fraction_part)
    required = sum(c == "0" for c in fraction_part)
    rounded = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    whole, _, fraction = f"{abs(rounded):.{places}f}".partition(".")
    minimum = (
        sum(c == "0" for c in integer_part[integer_part.find("0") :]) if "0" in integer_part else 0
    )
    whole = whole.lstrip("0").rjust(minimum, "0")
    if "," in integer_part and whole:
        whole = f"{int(whole):,}"
    fraction = fraction.rstrip("0").ljust(required, "0") if fraction else ""
    text = whole + ("." + fraction if fraction else "")
    sign = "-" if rounded < 0 and text.strip("0.,") and len(sections) == 1 else ""
    return literal_prefix + sign + text + literal_suffix


def _split_sections(pattern: str) -> list[str]:
    sections: list[str] = []
    current: list[str] = []
    quote = ""
    for char in pattern:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == ";":
            sections.append("".join(current))
            current = []
            continue
        current.append(char)
    sections.append("".join(current))
    return sections


def _number_span(section: str) -> tuple[str, str, str]:
    """Literal text before the first digit placeholder, the number pattern, text after."""
    pieces: list[tuple[bool, str]] = []
    i, n = 0, len(section)
    while i < n:
        char = section[i]
        if char in "'\"":
            end = section.find(char, i + 1)
            end = n if end < 0 else end
            pieces.append((False, section[i + 1 : end]))
            i = end + 1
        elif char == "\\":
            pieces.append((False, section[i + 1 : i + 2]))
            i += 2
        else:
            pieces.append((char in "0#.,", char))
            i += 1
    marks = [
        index for index, (is_pattern, text) in enumerate(pieces) if is_pattern and text in "0#"
    ]
    if not marks:
        return "".join(text for _, text in pieces), "", ""
    first = marks[0]
    while first > 0 and pieces[first - 1][0]:
        first -= 1
    last = marks[-1]
    while last + 1 < len(pieces) and pieces[last + 1][0] and pieces[last + 1][1] == ",":
        last += 1
    prefix = "".join(text for _, text in pieces[:first])
    number = "".join(text for is_pattern, text in pieces[first : last + 1] if is_pattern)
    suffix = "".join(text for _, text in pieces[last + 1 :])
    return prefix, number, suffix
