"""Service messages scripts print to talk to the server.

`##cephalo[setVariable name='<b64>' value='<b64>' sensitive='<b64 "True">']` (or the
`##octopus[…]` spelling Calamari's helpers print) on a line of its own sets an output
variable; `createArtifact` announces a file. Attribute values are base64 of UTF-8.
Message lines are taken out of the log text: they carry values (maybe sensitive) encoded.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

_MESSAGE = re.compile(
    r"\s*##(?P<dialect>cephalo|octopus)\[(?P<name>[A-Za-z][\w\-]*)(?P<attrs>.*)\]\s*"
)
_ATTRIBUTE = re.compile(r"\s*(?P<key>[A-Za-z][\w\-]*)='(?P<value>[^']*)'")
_MARKERS = ("##cephalo[", "##octopus[")
MAX_MESSAGE_CHARS = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SetVariable:
    name: str
    value: str
    sensitive: bool = False


@dataclass(frozen=True, slots=True)
class CreateArtifact:
    path: str
    original_filename: str | None = None
    length: int | None = None


@dataclass(frozen=True, slots=True)
class ServiceMessage:
    """Any other message (`stdout-warning`, `stderr-progress`…), attributes decoded if base64."""

    name: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MalformedServiceMessage:
    line: str
    reason: str


Message = SetVariable | CreateArtifact | ServiceMessage | MalformedServiceMessage


def _decode(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def parse_service_message(line: str) -> Message | None:
    """The message on this line, or None when the line is ordinary output."""
    match = _MESSAGE.fullmatch(line.rstrip("\r\n"))
    if match is None:
        return None
    raw = match.group("attrs")
    attributes: dict[str, str] = {}
    position = 0
    while position < len(raw.rstrip()):
        found = _ATTRIBUTE.match(raw, position)
        if found is None:
            return MalformedServiceMessage(
                line, f"cannot read the attributes at {raw[position:]!r}"
            )
        attributes[found.group("key")] = found.group("value")
        position = found.end()
    name = match.group("name")
    if name == "setVariable":
        return _set_variable(line, attributes)
    if name == "createArtifact":
        return _create_artifact(line, attributes)
    decoded = {key: _decode(value) or value for key, value in attributes.items()}
    return ServiceMessage(name, decoded)


def _set_variable(line: str, attributes: dict[str, str]) -> Message:
    if "name" not in attributes or "value" not in attributes:
        return MalformedServiceMessage(line, "setVariable needs name and value")
    name = _decode(attributes["name"])
    value = _decode(attributes["value"])
    if name is None or value is None:
        return MalformedServiceMessage(line, "setVariable name and value must be base64 (UTF-8)")
    if not name.strip():
        return MalformedServiceMessage(line, "setVariable name is empty")
    sensitive = (_decode(attributes.get("sensitive", "")) or "").strip().lower() == "true"
    return SetVariable(name, value, sensitive)


def _create_artifact(line: str, attributes: dict[str, str]) -> Message:
    path = _decode(attributes.get("path", ""))
    if not path:
        return MalformedServiceMessage(line, "createArtifact needs a base64 path")
    original = _decode(attributes["originalFilename"]) if "originalFilename" in attributes else None
    length_text = _decode(attributes["length"]) if "length" in attributes else None
    length = int(length_text) if length_text and length_text.strip().isdigit() else None
    return CreateArtifact(path, original, length)


def encode_set_variable(
    name: str, value: str, *, sensitive: bool = False, dialect: str = "cephalo"
) -> str:
    """The line a script prints to set an output variable (what the script helpers emit)."""

    def b64(text: str) -> str:
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    flag = f" sensitive='{b64('True')}'" if sensitive else ""
    return f"##{dialect}[setVariable name='{b64(name)}' value='{b64(value)}'{flag}]"


class OutputParser:
    """Split streamed script output into log text and service messages.

    Complete lines are classified; a trailing partial line is held back only while it could
    still become a message (and up to `MAX_MESSAGE_CHARS`), so ordinary output such as a
    progress bar without newlines is never delayed.
    """

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, chunk: str) -> list[str | Message]:
        data = self._pending + chunk
        self._pending = ""
        events: list[str | Message] = []
        lines = data.splitlines(keepends=True)
        if lines and not lines[-1].endswith(("\n", "\r")):
            tail = lines.pop()
            if _could_be_message(tail):
                self._pending = tail
            else:
                lines.append(tail)
        for line in lines:
            message = parse_service_message(line)
            events.append(line if message is None else message)
        return _join_text(events)

    def flush(self) -> list[str | Message]:
        data, self._pending = self._pending, ""
        if not data:
            return []
        message = parse_service_message(data)
        return [data if message is None else message]


def _could_be_message(partial: str) -> bool:
    if len(partial) > MAX_MESSAGE_CHARS:
        return False
    stripped = partial.lstrip()
    return any(marker.startswith(stripped) or stripped.startswith(marker) for marker in _MARKERS)


def _join_text(events: list[str | Message]) -> list[str | Message]:
    joined: list[str | Message] = []
    for event in events:
        if isinstance(event, str) and joined and isinstance(joined[-1], str):
            joined[-1] += event
        else:
            joined.append(event)
    return joined
