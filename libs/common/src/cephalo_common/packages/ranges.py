"""Channel version rules: NuGet and Maven version ranges, and the pre-release tag regex.

NuGet syntax (every format but Maven), as NuGet's `VersionRange` and Octopus read it:
`1.0` (≥ 1.0), `[1.0]` (exactly), `(1.0,)`, `(,1.0]`, `[1.0,2.0)`, `*` (any stable), `1.*`
(≥ 1.0; NuGet floats only choose, they do not bound). Build metadata is ignored, and a
range admits pre-release versions only when one of its bounds is itself a pre-release
(`[1.0,2.0)` rejects `1.5.0-beta`; `[2.0.0-alpha.1,2.0.0)` admits 2.0.0 pre-releases).

Maven syntax (the `maven` format): `[1.0,2.0)`, `[1.0]`, `(,1.0],[1.2,)` (a union), and a
bare `1.0`, which Maven reads as a soft preference that every version satisfies.

The tag rule is a regular expression searched (not anchored) in the pre-release label
followed by `+metadata` when there is metadata (`^$`: a plain release; `^[^+]`: any
pre-release; `^(|\\+.*)$`: no pre-release, any metadata). For Maven it is searched in the
qualifier, ignoring case. An empty rule admits everything; an invalid regex nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cephalo_common.packages.versions import (
    FormatLike,
    Version,
    VersionFormat,
    as_format,
    parse_version,
)

MAX_RANGE_LENGTH = 1000
MAX_TAG_PATTERN_LENGTH = 500


@dataclass(frozen=True)
class Bound:
    version: Version
    inclusive: bool


@dataclass(frozen=True)
class Interval:
    lower: Bound | None = None
    upper: Bound | None = None

    def contains(self, version: Version) -> bool:
        if self.lower is not None:
            order = self.lower.version.compare(version, ignore_metadata=True)
            if order > 0 or (order == 0 and not self.lower.inclusive):
                return False
        if self.upper is not None:
            order = self.upper.version.compare(version, ignore_metadata=True)
            if order < 0 or (order == 0 and not self.upper.inclusive):
                return False
        return True


@dataclass(frozen=True)
class VersionRange:
    """A parsed range: a union of intervals; `include_prerelease` is NuGet's rule."""

    text: str
    format: VersionFormat
    intervals: tuple[Interval, ...]
    include_prerelease: bool = True

    def contains(self, version: Version) -> bool:
        if version.format is not self.format:
            raise ValueError(f"a {self.format} range cannot hold a {version.format} version")
        if not self.include_prerelease and version.is_prerelease:
            return False
        return any(interval.contains(version) for interval in self.intervals)


EVERYTHING = Interval()


def parse_version_range(text: str, format: FormatLike = VersionFormat.SEMVER) -> VersionRange:
    """The range `text` in `format`'s syntax; `ValueError` when it is not one."""
    if len(text) > MAX_RANGE_LENGTH:
        raise ValueError(f"a version range is at most {MAX_RANGE_LENGTH} characters")
    version_format = as_format(format)
    if version_format is VersionFormat.MAVEN:
        return _parse_maven_range(text)
    return _parse_nuget_range(text, version_format)


def is_valid_version_range(text: str, format: FormatLike = VersionFormat.SEMVER) -> bool:
    if not text.strip():
        return True
    try:
        parse_version_range(text, format)
    except ValueError:
        return False
    return True


def version_in_range(version: str, range: str, format: str = "semver") -> bool:
    """Whether `version` satisfies `range` (empty: everything); ValueError if either is invalid."""
    parsed = parse_version(version, format)
    if not range.strip():
        return True
    return parse_version_range(range, format).contains(parsed)


def tag_subject(version: Version) -> str:
    """What a channel's tag regex is searched in, for this version."""
    if version.format is VersionFormat.MAVEN:
        return version.release
    return version.release + (f"+{version.metadata}" if version.metadata.strip() else "")


def prerelease_tag_matches(version: str, tag: str, format: str = "semver") -> bool:
    """Whether `version`'s pre-release (and metadata) matches the channel rule regex `tag`."""
    parsed = parse_version(version, format)
    if not tag.strip():
        return True
    if len(tag) > MAX_TAG_PATTERN_LENGTH:
        return False
    flags = re.IGNORECASE if parsed.format is VersionFormat.MAVEN else 0
    try:
        pattern = re.compile(tag, flags)
    except re.error:
        return False
    return pattern.search(tag_subject(parsed)) is not None


def matches_channel_rule(
    version: str, *, version_range: str = "", tag: str = "", format: str = "semver"
) -> bool:
    """Both halves of a channel version rule; False (not an error) for an invalid version."""
    try:
        return version_in_range(version, version_range, format) and prerelease_tag_matches(
            version, tag, format
        )
    except ValueError:
        return False


def _parse_nuget_range(text: str, format: VersionFormat) -> VersionRange:
    value = text.strip()
    if value == "*":
        return VersionRange(text, format, (EVERYTHING,), include_prerelease=False)
    if len(value) < 3:
        raise ValueError(f"{text!r} is not a valid version range")
    if value[0] not in "[(":
        minimum = _nuget_bound(value, True, format, floating=True)
        return VersionRange(
            text,
            format,
            (Interval(lower=minimum),),
            include_prerelease=minimum.version.is_prerelease,
        )
    if value[-1] not in "])":
        raise ValueError(f"{text!r} is not a valid version range: it must end with ] or )")
    parts = value[1:-1].split(",")
    if len(parts) > 2 or all(not part.strip() for part in parts):
        raise ValueError(f"{text!r} is not a valid version range")
    low_text, high_text = parts[0], parts[-1]
    lower: Bound | None = None
    if low_text.strip():
        lower = _nuget_bound(low_text, value[0] == "[", format, floating=True)
    upper = _nuget_bound(high_text, value[-1] == "]", format) if high_text.strip() else None
    include = any(bound is not None and bound.version.is_prerelease for bound in (lower, upper))
    return VersionRange(text, format, (Interval(lower, upper),), include_prerelease=include)


def _nuget_bound(
    text: str, inclusive: bool, format: VersionFormat, *, floating: bool = False
) -> Bound:
    value = text.strip()
    if "*" in value:
        if not floating:
            raise ValueError(f"{text!r}: only the lower bound of a range may float")
        value = _float_minimum(value)
    return Bound(parse_version(value, format), inclusive)


def _float_minimum(value: str) -> str:
    """The lowest version a NuGet float admits: `1.*` → `1.0`, `1.0.0-beta*` → `1.0.0-beta`,
    `1.0.0-*` → `1.0.0-0`."""
    if value.count("*") != 1 or not value.endswith("*"):
        raise ValueError(f"{value!r} is not a valid floating version")
    stem = value[:-1]
    if stem.endswith("-"):
        return stem + "0"
    if "-" in stem:
        return stem
    if not stem.endswith("."):
        raise ValueError(f"{value!r} is not a valid floating version")
    return stem + "0"


def _parse_maven_range(text: str) -> VersionRange:
    process = text.strip()
    if not process:
        raise ValueError("a version range cannot be empty")
    intervals: list[Interval] = []
    previous_upper: Version | None = None
    while process[:1] in ("[", "("):
        close = [position for position in (process.find(")"), process.find("]")) if position >= 0]
        if not close:
            raise ValueError(f"{text!r}: unbounded range")
        end = min(close)
        interval = _maven_interval(process[: end + 1], text)
        if intervals and (
            interval.lower is None
            or previous_upper is None
            or interval.lower.version.compare(previous_upper) < 0
        ):
            raise ValueError(f"{text!r}: ranges overlap")
        intervals.append(interval)
        previous_upper = interval.upper.version if interval.upper else None
        process = process[end + 1 :].strip()
        if process.startswith(","):
            process = process[1:].strip()
    if process:
        if intervals:
            raise ValueError(f"{text!r}: only bracketed ranges may be combined")
        parse_version(process, VersionFormat.MAVEN)
        intervals.append(EVERYTHING)
    return VersionRange(text, VersionFormat.MAVEN, tuple(intervals))


def _maven_interval(spec: str, text: str) -> Interval:
    lower_inclusive, upper_inclusive = spec.startswith("["), spec.endswith("]")
    inner = spec[1:-1].strip()
    if "," not in inner:
        if not (lower_inclusive and upper_inclusive):
            raise ValueError(f"{text!r}: a single version must be written [version]")
        exact = parse_version(inner, VersionFormat.MAVEN)
        return Interval(Bound(exact, True), Bound(exact, True))
    low, _, high = (part.strip() for part in inner.partition(","))
    if low == high:
        raise ValueError(f"{text!r}: a range cannot have identical bounds")
    lower = Bound(parse_version(low, VersionFormat.MAVEN), lower_inclusive) if low else None
    upper = Bound(parse_version(high, VersionFormat.MAVEN), upper_inclusive) if high else None
    if lower and upper and upper.version.compare(lower.version) < 0:
        raise ValueError(f"{text!r}: the upper bound is below the lower bound")
    return Interval(lower, upper)
