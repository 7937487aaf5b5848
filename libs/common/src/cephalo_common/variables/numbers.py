"""Numbers as .NET reads and prints them (invariant culture), so results match Octostache."""

from __future__ import annotations

import math
import re
from decimal import Decimal

_INT = re.compile(r"\s*[+-]?[0-9]+\s*")
_DOUBLE = re.compile(r"\s*[+-]?(?:[0-9][0-9,]*(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def parse_int(text: str) -> int | None:
    """`int.TryParse`: optional sign and surrounding whitespace, 32-bit range."""
    if not _INT.fullmatch(text):
        return None
    value = int(text)
    return value if INT32_MIN <= value <= INT32_MAX else None


def parse_double(text: str) -> float | None:
    """`double.TryParse` (NumberStyles.Float | AllowThousands, invariant culture)."""
    stripped = text.strip()
    special = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf, "∞": math.inf}
    if stripped.lower() in special:
        return special[stripped.lower()]
    if stripped == "-∞":
        return -math.inf
    if not _DOUBLE.fullmatch(text):
        return None
    return float(stripped.replace(",", ""))


def format_double(value: float) -> str:
    """`double.ToString()` on .NET Core 3.0+: shortest round-trip digits, `E` exponents."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    magnitude = abs(value)
    if magnitude >= 1e15 or magnitude < 1e-4:
        sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
        assert isinstance(exponent, int)
        text = "".join(str(digit) for digit in digits)
        power = exponent + len(text) - 1
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return ("-" if sign else "") + f"{mantissa}E{'+' if power >= 0 else '-'}{abs(power):02d}"
    if value.is_integer():
        return str(int(value))
    return repr(value)
