"""What a mutating request changed, as the audit log keeps it: a bounded, redacted summary
of the request body's fields.

Every sensitive value becomes `"changed"` before anything is stored, so the audit table,
its `audit.recorded` events and its archives never hold a secret. A value counts as
sensitive when its key's name looks secret (password, token, API key, private key, ...),
when it sits in a variable marked sensitive (`type: "Sensitive"`, `is_sensitive: true`),
or when the value itself looks like a credential (an `API-...` key, a PEM private key).
Bodies that are not JSON, or too large to keep a copy of, are described, never parsed.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

CHANGED = "changed"
"""What the audit log shows instead of a sensitive value."""

MAX_CAPTURED_BYTES = 64 * 1024
"""A larger body is summarised by its size only; the copy stops here (the body itself still
streams to its owner untouched)."""
MAX_FIELDS = 50
MAX_ITEMS = 20
MAX_DEPTH = 3
MAX_TEXT = 200

SECRET_NAME_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "credential",
    "authorization",
    "cookie",
    "signature",
    "session",
    "pwd",
)
SENSITIVE_MARKERS = {"type": "sensitive", "issensitive": True, "sensitive": True}
VALUE_KEYS = frozenset({"value", "defaultvalue"})
ANSWER_MAPS = frozenset({"variables", "promptedvariables"})
"""Name → value maps of prompted-variable answers (Cephalo's `prompted_variables`, Octopus's
deployment `Variables{}`): which are sensitive is not known here, so every value is."""
SECRET_VALUE = re.compile(r"^API-[A-Z0-9]{16,}$|-----BEGIN [A-Z ]*PRIVATE KEY-----", re.I)
JSON_TYPES = re.compile(r"^application/([\w.+-]+\+)?json$")


def _clean(text: str) -> str:
    """JSONB holds neither NUL nor lone surrogates (which JSON escapes can produce)."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def is_secret_name(name: str) -> bool:
    """Over-redacting is harmless, leaking is not: any name containing a secret-ish word,
    and any name ending in `key` (`api_key`, `ssh_key`, `signing_key`), is sensitive."""
    normal = _normal(name)
    return normal.endswith("key") or any(part in normal for part in SECRET_NAME_PARTS)


def marks_sensitive(obj: dict[str, Any]) -> bool:
    """A variable (Cephalo's or Octopus's spelling) whose value is write-only."""
    for key, value in obj.items():
        wanted = SENSITIVE_MARKERS.get(_normal(key))
        if wanted is None:
            continue
        if value is True and wanted is True:
            return True
        if isinstance(value, str) and isinstance(wanted, str) and value.lower() == wanted:
            return True
    return False


def summarise_value(value: Any, depth: int = 0) -> Any:
    """Scalars as they are (text shortened), containers bounded in depth and breadth."""
    if isinstance(value, str):
        if SECRET_VALUE.search(value):
            return CHANGED
        return _clean(value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            return f"[{len(value)} items]"
        items = [summarise_value(item, depth + 1) for item in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"… {len(value) - MAX_ITEMS} more items")
        return items
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            return f"{{{len(value)} fields}}"
        return summarise_fields(value, depth + 1)
    return str(type(value).__name__)


def summarise_fields(obj: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """The object's fields, sensitive ones replaced by `"changed"`."""
    sensitive_object = marks_sensitive(obj)
    fields: dict[str, Any] = {}
    for name, value in list(obj.items())[:MAX_FIELDS]:
        key = _clean(str(name)[:MAX_TEXT])
        secret = is_secret_name(key) or (sensitive_object and _normal(key) in VALUE_KEYS)
        if secret and value is not None:
            fields[key] = CHANGED
        elif isinstance(value, dict) and _normal(key) in ANSWER_MAPS:
            fields[key] = _answers(value)
        else:
            fields[key] = summarise_value(value, depth)
    if len(obj) > MAX_FIELDS:
        fields["…"] = f"{len(obj) - MAX_FIELDS} more fields"
    return fields


def _answers(answers: dict[str, Any]) -> dict[str, Any]:
    names = [_clean(str(name)[:MAX_TEXT]) for name in list(answers)[:MAX_FIELDS]]
    summary: dict[str, Any] = dict.fromkeys(names, CHANGED)
    if len(answers) > MAX_FIELDS:
        summary["…"] = f"{len(answers) - MAX_FIELDS} more fields"
    return summary


def is_json(content_type: str | None) -> bool:
    """No content type is taken as JSON too: curl and many clients omit it."""
    if not content_type:
        return True
    return bool(JSON_TYPES.match(content_type.split(";", 1)[0].strip().lower()))


@dataclass
class BodyCopy:
    """The first `MAX_CAPTURED_BYTES` of a request body as it streams past, and its size."""

    content_type: str | None
    size: int = 0
    complete: bool = False
    kept: bytearray = field(default_factory=bytearray)

    def add(self, chunk: bytes, more: bool) -> None:
        self.size += len(chunk)
        if self.size <= MAX_CAPTURED_BYTES and is_json(self.content_type):
            self.kept += chunk
        if not more:
            self.complete = True

    def changes(self) -> dict[str, Any] | None:
        return summarise_body(self.content_type, bytes(self.kept), self.size, self.complete)


def summarise_body(
    content_type: str | None, kept: bytes, size: int, complete: bool
) -> dict[str, Any] | None:
    """`{"fields": {...}}` for a JSON object, otherwise `{"summary": "..."}` saying what the
    body was; None when no body was sent (or none was read before the answer)."""
    if size == 0:
        return None
    if not complete:
        return {"summary": f"body not read in full ({size} bytes read)", "bytes": size}
    if not is_json(content_type):
        kind = (content_type or "").split(";", 1)[0].strip()[:100]
        return {"summary": f"not JSON ({kind})", "bytes": size}
    if size > MAX_CAPTURED_BYTES:
        return {
            "summary": f"too large to summarise (over {MAX_CAPTURED_BYTES} bytes)",
            "bytes": size,
        }
    try:
        parsed = json.loads(kept)
    except (ValueError, RecursionError):
        return {"summary": "not valid JSON", "bytes": size}
    if isinstance(parsed, dict):
        return {"fields": summarise_fields(parsed), "bytes": size}
    return {
        "summary": f"JSON {type(parsed).__name__}",
        "value": summarise_value(parsed),
        "bytes": size,
    }
