"""Package versions in the five formats Octopus feeds use, with Octopus's equality and order.

Each format parses into a `Version` whose ordering is the one the Octopus.Versioning
library gives that format (it is what users see in Octopus, so it is what they expect):

- `semver`: NuGet-style SemVer 2 with 1 to 4 numeric parts; missing parts are 0 and leading
  zeros are ignored (`1.0.0.0 == 1.0.0`, `1.01 == 1.1`); a pre-release sorts before its
  release; labels compare numerically when both are numbers (`beta.10 > beta.9`), numbers
  before words, words case-insensitively; build metadata breaks ties, case-insensitively.
- `octopus`: the permissive scheme (optional `v`, up to four numbers, then any
  pre-release); metadata is ignored.
- `docker`: `octopus` plus the tag `latest`, which is newer than every other tag.
- `lexicographic`: no numbers at all; the label list is compared as in `octopus`.
- `maven`: Maven's `ComparableVersion` (`alpha < beta < milestone < rc < snapshot <
  "" = ga = final < sp`, `1-1 < 1.0.1`), see `cephalo_common.packages.maven`.
"""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cephalo_common.packages import maven

INT32_MAX = 2**31 - 1
MAX_VERSION_LENGTH = 256


class VersionFormat(StrEnum):
    SEMVER = "semver"
    OCTOPUS = "octopus"
    MAVEN = "maven"
    DOCKER = "docker"
    LEXICOGRAPHIC = "lexicographic"


FormatLike = VersionFormat | str


def as_format(format: FormatLike) -> VersionFormat:
    """`"SemVer"`, `"semver"` and `VersionFormat.SEMVER` are the same format."""
    try:
        return VersionFormat(str(format).lower())
    except ValueError:
        known = ", ".join(item.value for item in VersionFormat)
        raise ValueError(f"unknown version format {format!r} (known: {known})") from None


LabelKey = tuple[tuple[int, int, str], ...]


def _label_key(labels: Iterable[str]) -> LabelKey:
    """Numbers (as .NET's int.TryParse sees them) before words; words ignore case."""
    key: list[tuple[int, int, str]] = []
    for label in labels:
        if label.isascii() and label.isdigit() and int(label) <= INT32_MAX:
            key.append((0, int(label), ""))
        else:
            key.append((1, 0, label.upper()))
    return tuple(key)


@dataclass(frozen=True, eq=False)
class Version(ABC):
    """A parsed version. Equal versions (`compare(...) == 0`) hash alike."""

    text: str
    format: VersionFormat
    release: str = ""
    """The pre-release part (Maven: the qualifier); empty for a release."""
    metadata: str = ""

    @property
    def is_prerelease(self) -> bool:
        return self.release != ""

    @abstractmethod
    def sort_key(self) -> tuple[Any, ...]:
        """A key whose tuple order is the version order (every format but Maven)."""

    def precedence_key(self) -> tuple[Any, ...]:
        """The sort key without build metadata: what version ranges compare."""
        return self.sort_key()

    def compare(self, other: Version, *, ignore_metadata: bool = False) -> int:
        if other.format is not self.format:
            raise ValueError(f"cannot compare a {self.format} version with a {other.format} one")
        if ignore_metadata:
            return _sign(self.precedence_key(), other.precedence_key())
        return _sign(self.sort_key(), other.sort_key())

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Version) and other.format is self.format and not self.compare(other)
        )

    def __hash__(self) -> int:
        return hash((self.format, self.sort_key()))

    def __lt__(self, other: Version) -> bool:
        return self.compare(other) < 0

    def __le__(self, other: Version) -> bool:
        return self.compare(other) <= 0

    def __gt__(self, other: Version) -> bool:
        return self.compare(other) > 0

    def __ge__(self, other: Version) -> bool:
        return self.compare(other) >= 0

    def __str__(self) -> str:
        return self.text


def _sign(left: Any, right: Any) -> int:
    return int(left > right) - int(left < right)


@dataclass(frozen=True, eq=False)
class SemanticVersion(Version):
    numbers: tuple[int, int, int, int] = (0, 0, 0, 0)
    labels: tuple[str, ...] = ()

    def sort_key(self) -> tuple[Any, ...]:
        return (*self.precedence_key(), self.metadata.upper())

    def precedence_key(self) -> tuple[Any, ...]:
        return (*self.numbers, 0 if self.labels else 1, _label_key(self.labels))

    def normalized(self) -> str:
        """`1.2.3` (`1.2.3.4` when the fourth part is set), labels lowercased, no metadata."""
        major, minor, patch, revision = self.numbers
        core = f"{major}.{minor}.{patch}" + (f".{revision}" if revision else "")
        return core + ("-" + ".".join(self.labels).lower() if self.labels else "")


_SEMVER_NUMBER = re.compile(r"[0-9]+")
_SEMVER_LABEL = re.compile(r"[0-9A-Za-z-]+")


def parse_semver(text: str) -> SemanticVersion:
    """NuGet/Octopus `SemVerFactory` rules: `1`, `1.2`, `1.2.3`, `1.2.3.4`, then
    `-label.label` and `+metadata.metadata` (letters, digits, `-`)."""
    value = text.strip()
    core, plus, metadata = value.partition("+")
    numbers_part, dash, release = core.partition("-")
    numbers = numbers_part.split(".")
    if not numbers_part or len(numbers) > 4:
        raise ValueError(f"{text!r} is not a valid version: expected 1 to 4 numbers")
    for number in numbers:
        if not _SEMVER_NUMBER.fullmatch(number) or int(number) > INT32_MAX:
            raise ValueError(f"{text!r} is not a valid version: {number!r} is not a number")
    labels = tuple(release.split(".")) if dash else ()
    if any(not _SEMVER_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{text!r} is not a valid version: bad pre-release label")
    if plus and any(not _SEMVER_LABEL.fullmatch(part) for part in metadata.split(".")):
        raise ValueError(f"{text!r} is not a valid version: bad build metadata")
    padded = [int(number) for number in numbers] + [0] * (4 - len(numbers))
    return SemanticVersion(
        text=value,
        format=VersionFormat.SEMVER,
        release=release if dash else "",
        metadata=metadata if plus else "",
        numbers=(padded[0], padded[1], padded[2], padded[3]),
        labels=labels,
    )


_NON_ALPHANUMERIC = re.compile(r"[^\w]|_")


def _release_labels(release: str) -> tuple[str, ...]:
    """Octopus's `AlphaNumericOnly()` then split: any other character separates labels."""
    return tuple(_NON_ALPHANUMERIC.sub("-", release).split("-"))


@dataclass(frozen=True, eq=False)
class OctopusVersion(Version):
    numbers: tuple[int, int, int, int] = (0, 0, 0, 0)

    def sort_key(self) -> tuple[Any, ...]:
        release = _label_key(_release_labels(self.release)) if self.release else ()
        return (*self.numbers, 0 if self.release else 1, release)


_OCTOPUS = re.compile(
    r"^\s*(?:\s*(?P<prefix>v|V)?\s*(?P<major>\d+\b)\s*"
    r"(?:\.\s*(?P<minor>\d+\b)\s*)?"
    r"(?:\.\s*(?P<patch>\d+\b)\s*)?"
    r"(?:\.\s*(?P<revision>\d+\b)\s*)?)?"
    r"(?:[.\-_\\])?"
    r"(?P<prerelease>[A-Za-z0-9]*?(?:[.\-_\\][A-Za-z0-9.\-_\\]*?)?)?"
    r"(?:\+(?P<meta>[A-Za-z0-9_\-.\\+]*?))?\s*$",
    re.ASCII,
)


def _octopus_parts(text: str) -> tuple[tuple[int, int, int, int], str, str]:
    if not text.strip():
        raise ValueError("a version cannot be empty")
    match = _OCTOPUS.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a valid version")
    numbers = [int(match.group(name) or 0) for name in ("major", "minor", "patch", "revision")]
    if any(number > INT32_MAX for number in numbers):
        raise ValueError(f"{text!r} is not a valid version: a number is too large")
    return (
        (numbers[0], numbers[1], numbers[2], numbers[3]),
        match.group("prerelease") or "",
        match.group("meta") or "",
    )


def parse_octopus(text: str) -> OctopusVersion:
    numbers, release, metadata = _octopus_parts(text)
    return OctopusVersion(
        text=text.replace(" ", ""),
        format=VersionFormat.OCTOPUS,
        release=release,
        metadata=metadata,
        numbers=numbers,
    )


DOCKER_LATEST = "latest"


@dataclass(frozen=True, eq=False)
class DockerTag(OctopusVersion):
    @property
    def is_prerelease(self) -> bool:
        return self.release != "" and self.text != DOCKER_LATEST

    def sort_key(self) -> tuple[Any, ...]:
        if self.text == DOCKER_LATEST:
            return (1,)
        return (0, *super().sort_key())


def parse_docker(text: str) -> DockerTag:
    numbers, release, metadata = _octopus_parts(text)
    return DockerTag(
        text=text.replace(" ", ""),
        format=VersionFormat.DOCKER,
        release=release,
        metadata=metadata,
        numbers=numbers,
    )


@dataclass(frozen=True, eq=False)
class LexicographicVersion(Version):
    @property
    def is_prerelease(self) -> bool:
        return False

    def sort_key(self) -> tuple[Any, ...]:
        return _label_key(_release_labels(self.release))


_LEXICOGRAPHIC = re.compile(
    r"^(?P<release>[A-Za-z0-9]*?(?:[.\-_\\][A-Za-z0-9.\-_\\]*?)?)?"
    r"(?:\+(?P<meta>[A-Za-z0-9_\-.\\+]*?))?\s*$",
    re.ASCII,
)


def parse_lexicographic(text: str) -> LexicographicVersion:
    if not text.strip():
        raise ValueError("a version cannot be empty")
    match = _LEXICOGRAPHIC.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a valid version")
    return LexicographicVersion(
        text=text.replace(" ", ""),
        format=VersionFormat.LEXICOGRAPHIC,
        release=match.group("release") or "",
        metadata=match.group("meta") or "",
    )


@dataclass(frozen=True, eq=False)
class MavenVersion(Version):
    comparable: maven.ComparableVersion = field(
        default_factory=lambda: maven.ComparableVersion("0")
    )

    def sort_key(self) -> tuple[Any, ...]:
        return (self.comparable.canonical,)

    def compare(self, other: Version, *, ignore_metadata: bool = False) -> int:
        if not isinstance(other, MavenVersion):
            raise ValueError(f"cannot compare a maven version with a {other.format} one")
        return self.comparable.compare(other.comparable)


def parse_maven(text: str) -> MavenVersion:
    value = text.strip()
    if not value or any(character.isspace() for character in value):
        raise ValueError(f"{text!r} is not a valid Maven version")
    return MavenVersion(
        text=value,
        format=VersionFormat.MAVEN,
        release=maven.qualifier(value),
        comparable=maven.ComparableVersion(value),
    )


_PARSERS: dict[VersionFormat, Callable[[str], Version]] = {
    VersionFormat.SEMVER: parse_semver,
    VersionFormat.OCTOPUS: parse_octopus,
    VersionFormat.DOCKER: parse_docker,
    VersionFormat.LEXICOGRAPHIC: parse_lexicographic,
    VersionFormat.MAVEN: parse_maven,
}


def parse_version(text: str, format: FormatLike = VersionFormat.SEMVER) -> Version:
    """The version `text` in `format`; `ValueError` when it is not one."""
    if len(text) > MAX_VERSION_LENGTH:
        raise ValueError(f"a version is at most {MAX_VERSION_LENGTH} characters")
    return _PARSERS[as_format(format)](text)


def is_valid_version(text: str, format: FormatLike = VersionFormat.SEMVER) -> bool:
    try:
        parse_version(text, format)
    except ValueError:
        return False
    return True


def compare_versions(a: str, b: str, format: str = "semver") -> int:
    """-1, 0 or 1 as `a` is older than, the same as, or newer than `b` (ValueError if invalid)."""
    return parse_version(a, format).compare(parse_version(b, format))


def normalize_version(text: str, format: FormatLike = VersionFormat.SEMVER) -> str:
    """One spelling per version, for identity: `1.0.0.0`, `1.0` and `1.00.0` are `1.0.0`.

    SemVer drops build metadata (NuGet identity); other formats keep the text as given
    (lowercased), since their equality is not a normal form.
    """
    version = parse_version(text, format)
    if isinstance(version, SemanticVersion):
        return version.normalized()
    return version.text.lower()


def is_prerelease(text: str, format: FormatLike = VersionFormat.SEMVER) -> bool:
    return parse_version(text, format).is_prerelease


def version_sort_key(text: str, format: FormatLike = VersionFormat.SEMVER) -> Any:
    """A `sorted()` key for version strings in `format` (ValueError if one is invalid)."""
    return _KEY(parse_version(text, format))


def sort_versions(
    versions: Iterable[str], format: FormatLike = VersionFormat.SEMVER, *, newest_first: bool = True
) -> list[str]:
    """The valid `versions`, as given, in version order (equal ones keep their input order);
    invalid ones are dropped."""
    parsed: list[tuple[str, Version]] = []
    for text in versions:
        try:
            parsed.append((text, parse_version(text, format)))
        except ValueError:
            continue
    ordered = sorted(parsed, key=lambda pair: _KEY(pair[1]), reverse=newest_first)
    return [text for text, _ in ordered]


def _compare(left: Version, right: Version) -> int:
    return left.compare(right)


_KEY = functools.cmp_to_key(_compare)
