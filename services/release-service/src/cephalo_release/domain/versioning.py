"""Release numbers from the project's template (Octopus "release versioning"). Pure.

A template mixes text with variables and may end as a version mask:

- `#{Cephalo.Version.LastMajor}` … `LastMinor`, `LastPatch`, `LastBuild`: the parts of the
  project's latest release (0 when there is none or a part is missing);
  `NextMajor` … `NextBuild`: that part plus one. `Octopus.` works as well as `Cephalo.`.
- `#{Cephalo.Date.Year}`, `Month`, `Day`, `DayOfYear`; `#{Cephalo.Time.Hour}`, `Minute`,
  `Second` (UTC; month, day and time parts are two digits).
- A mask: dot-separated parts where `i` increments the latest release's part (0 when an
  earlier part changed), `c` keeps it, and digits are taken as they are:
  `1.2.i` after `1.2.7` is `1.2.8`, after `1.1.9` it is `1.2.0`. A suffix after `-` or
  `+` is kept (`c.c.i-beta`).
"""

from __future__ import annotations

import re
from datetime import datetime

from cephalo_common.errors import Invalid

VARIABLE = re.compile(r"#\{\s*([^}]*?)\s*\}")
LEADING_NUMBERS = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?")
PARTS = ("Major", "Minor", "Patch", "Build")


def version_parts(version: str | None) -> tuple[int, int, int, int]:
    """The numeric parts of a version; what is missing or not numeric is 0."""
    match = LEADING_NUMBERS.match(version or "")
    if match is None:
        return (0, 0, 0, 0)
    a, b, c, d = (int(group) if group is not None else 0 for group in match.groups())
    return (a, b, c, d)


def _variables(last: str | None, now: datetime) -> dict[str, str]:
    parts = version_parts(last)
    values: dict[str, str] = {}
    for index, name in enumerate(PARTS):
        values[f"Version.Last{name}"] = str(parts[index])
        values[f"Version.Next{name}"] = str(parts[index] + 1)
    values.update(
        {
            "Date.Year": f"{now.year:04d}",
            "Date.Month": f"{now.month:02d}",
            "Date.Day": f"{now.day:02d}",
            "Date.DayOfYear": f"{now.timetuple().tm_yday:03d}",
            "Time.Hour": f"{now.hour:02d}",
            "Time.Minute": f"{now.minute:02d}",
            "Time.Second": f"{now.second:02d}",
        }
    )
    return values


def _substitute(template: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        for prefix in ("Cephalo.", "Octopus."):
            if name.startswith(prefix) and name[len(prefix) :] in values:
                return values[name[len(prefix) :]]
        raise Invalid(f"unknown variable #{{{name}}} in the release version template")

    return VARIABLE.sub(replace, template)


def _apply_mask(text: str, last: str | None) -> str:
    split = re.search(r"[-+]", text)
    core, suffix = (text[: split.start()], text[split.start() :]) if split else (text, "")
    segments = core.split(".")
    if not any(segment in ("i", "c") for segment in segments):
        return text
    previous = version_parts(last)
    changed = False
    result = []
    for index, segment in enumerate(segments):
        current = previous[index] if index < len(previous) else 0
        if segment == "c":
            value = current
        elif segment == "i":
            value = 0 if changed else current + 1
            changed = True
        elif segment.isdigit():
            value = int(segment)
            changed = changed or value != current
        else:
            raise Invalid(f"{text!r} is not a version mask (use digits, i or c between dots)")
        result.append(str(value))
    return ".".join(result) + suffix


def next_release_version(template: str, last: str | None, now: datetime) -> str:
    """The release number `template` gives after the release numbered `last`."""
    return _apply_mask(_substitute(template, _variables(last, now)), last)
