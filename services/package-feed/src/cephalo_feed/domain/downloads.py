"""Download semantics of RFC 9110: validators, conditional requests, single byte ranges.

The strong ETag of a package version is its SHA-256: the same bytes always have the same
tag, and an overwritten version gets a new one. Only a single range is served; a request
for several (or an unparsable one) gets the whole body, which RFC 9110 allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from enum import Enum
from urllib.parse import quote

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE | re.ASCII)
_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._+\-]")


def etag_for(sha256: str) -> str:
    return f'"{sha256}"'


def http_date(moment: datetime) -> str:
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int
    """Inclusive, as in `Content-Range`."""

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable(Enum):
    RANGE = "unsatisfiable"


def parse_range(header: str | None, size: int) -> ByteRange | Unsatisfiable | None:
    """The one range asked for; None means "send everything" (no, several or bad ranges)."""
    if header is None or "," in header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            return Unsatisfiable.RANGE
        return ByteRange(max(size - suffix, 0), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return Unsatisfiable.RANGE
    return ByteRange(start, min(end, size - 1))


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def _weak_match(tag: str, current: str) -> bool:
    return tag.removeprefix("W/") == current.removeprefix("W/")


class Precondition(Enum):
    PROCEED = 200
    NOT_MODIFIED = 304
    FAILED = 412


def evaluate_preconditions(
    *,
    etag: str,
    last_modified: datetime,
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
    if_unmodified_since: str | None,
) -> Precondition:
    """RFC 9110 §13.2.2 order, for GET and HEAD."""
    if if_match is not None:
        tags = _tags(if_match)
        if "*" not in tags and etag not in tags:
            return Precondition.FAILED
    elif if_unmodified_since is not None:
        since = _parse_date(if_unmodified_since)
        if since is not None and last_modified.replace(microsecond=0) > since:
            return Precondition.FAILED
    if if_none_match is not None:
        tags = _tags(if_none_match)
        if "*" in tags or any(_weak_match(tag, etag) for tag in tags):
            return Precondition.NOT_MODIFIED
    elif if_modified_since is not None:
        since = _parse_date(if_modified_since)
        if since is not None and last_modified.replace(microsecond=0) <= since:
            return Precondition.NOT_MODIFIED
    return Precondition.PROCEED


def if_range_allows(if_range: str | None, *, etag: str, last_modified: datetime) -> bool:
    """A Range is honoured only if `If-Range` (when sent) still names this representation."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith(('"', "W/")):
        return value == etag
    since = _parse_date(value)
    return since is not None and since == last_modified.replace(microsecond=0)


def _parse_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else None


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name in RFC 8187 form, so no
    quote, CR/LF, path separator or non-ASCII character reaches the header unescaped."""
    fallback = _SAFE_FILENAME.sub("_", filename).strip("._") or "package"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
