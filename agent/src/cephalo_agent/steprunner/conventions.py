"""Config conventions: `#{…}` substitution in files, structured variable replacement.

Structured replacement (Octopus's "Structured Configuration Variables"): a variable named
`Logging:LogLevel:Default` or `Logging.LogLevel.Default` (case-insensitive) replaces the
value at that key path in JSON, YAML, `.properties` and `.env` files. System variables
(`Octopus.*`, `Cephalo.*`) never replace anything. JSON keeps the replaced value's type when
the new text parses as that type; YAML is edited line by line (block mappings), so comments
and layout survive.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cephalo_agent.steprunner.errors import StepFailed
from cephalo_agent.steprunner.output import StepOutput

SYSTEM_PREFIXES = ("octopus.", "cephalo.")


def matching_files(root: Path, patterns: str) -> list[Path]:
    """Files under `root` matched by newline/semicolon-separated globs (`**` allowed)."""
    found: dict[Path, None] = {}
    for pattern in re.split(r"[\n;]", patterns):
        pattern = pattern.strip()
        if not pattern:
            continue
        if pattern.startswith("/") or ".." in re.split(r"[\\/]", pattern):
            raise StepFailed(f"The file pattern {pattern!r} must stay inside the package.")
        for path in sorted(root.glob(pattern)):
            if path.is_file() and not path.is_symlink():
                found[path] = None
    return list(found)


def substitute_in_files(
    root: Path, patterns: str, variables: Mapping[str, str], output: StepOutput
) -> None:
    from cephalo_common.variables.evaluator import VariableDictionary  # Python 3.11+ only

    dictionary = VariableDictionary(variables)
    files = matching_files(root, patterns)
    if not files:
        output.error(f"No files matched {patterns!r} for variable substitution.")
    for path in files:
        relative = path.relative_to(root)
        try:
            text = path.read_text("utf-8")
        except UnicodeDecodeError:
            output.error(f"Skipped substitution in {relative}: it is not UTF-8 text.")
            continue
        evaluation = dictionary.render(text)
        reason = "; ".join(str(e) for e in evaluation.errors)
        if evaluation.text is None:
            raise StepFailed(f"Variable substitution in {relative} failed: {reason or 'refused'}")
        if reason:
            output.error(f"{relative} was left partly unsubstituted: {reason}")
        if evaluation.missing:
            output.error(f"Unresolved in {relative}: {', '.join(evaluation.missing)}")
        path.write_text(evaluation.text, "utf-8")
        output.info(f"Substituted variables in {relative}.")


def substitute_script(body: str, variables: Mapping[str, str], output: StepOutput) -> str:
    """An inline script with its `#{…}` evaluated, as Octopus does before running it; an
    unresolved name is left as written (and named in the log)."""
    if "#{" not in body:
        return body
    from cephalo_common.variables.evaluator import VariableDictionary  # Python 3.11+ only

    evaluation = VariableDictionary(variables).render(body)
    if evaluation.text is None:
        reason = "; ".join(str(e) for e in evaluation.errors)
        raise StepFailed(f"Variable substitution in the script failed: {reason or 'refused'}")
    if evaluation.missing:
        output.info(f"Left as written in the script: {', '.join(evaluation.missing)}")
    return evaluation.text


class _Names:
    """Variable lookup by key path, in both spellings, case-insensitively."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        self.values = {
            name.lower(): value
            for name, value in variables.items()
            if not name.lower().startswith(SYSTEM_PREFIXES)
        }

    def find(self, path: list[str]) -> str | None:
        for separator in (":", "."):
            value = self.values.get(separator.join(path).lower())
            if value is not None:
                return value
        return None


def replace_structured(
    root: Path, patterns: str, variables: Mapping[str, str], output: StepOutput
) -> None:
    names = _Names(variables)
    for path in matching_files(root, patterns):
        replace = _replacer(path)
        relative = path.relative_to(root)
        if replace is None:
            output.error(f"Skipped {relative}: not JSON, YAML, .properties or .env.")
            continue
        try:
            text = path.read_text("utf-8")
        except UnicodeDecodeError:
            raise StepFailed(f"{relative} is not UTF-8 text.") from None
        new_text, count = replace(text, names, relative)
        path.write_text(new_text, "utf-8")
        output.info(f"Replaced {count} value(s) in {relative}.")


def _replacer(path: Path):  # type: ignore[no-untyped-def]
    name = path.name.lower()
    if name.endswith(".json"):
        return _replace_json
    if name.endswith((".yaml", ".yml")):
        return _replace_yaml
    if name.endswith(".properties"):
        return _replace_properties
    if name == ".env" or name.endswith(".env"):
        return _replace_env
    return None


def _replace_json(text: str, names: _Names, relative: Path) -> tuple[str, int]:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise StepFailed(f"{relative} is not valid JSON: {error}") from None
    counter = [0]
    document = _walk_json(document, [], names, counter)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n", counter[0]


def _walk_json(node: Any, path: list[str], names: _Names, counter: list[int]) -> Any:
    if path:
        value = names.find(path)
        if value is not None:
            counter[0] += 1
            return _typed(node, value)
    if isinstance(node, dict):
        return {k: _walk_json(v, [*path, k], names, counter) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk_json(v, [*path, str(i)], names, counter) for i, v in enumerate(node)]
    return node


def _typed(current: Any, value: str) -> Any:
    """The replacement with the type of the value it replaces, when it parses as that."""
    if isinstance(current, str):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    if current is None or isinstance(current, (dict, list)):
        return parsed
    if isinstance(current, bool):
        return parsed if isinstance(parsed, bool) else value
    if isinstance(current, (int, float)):
        plain_number = isinstance(parsed, (int, float)) and not isinstance(parsed, bool)
        return parsed if plain_number else value
    return value


_YAML_KEY = re.compile(
    r"^(?P<indent>[ ]*)(?P<key>\"[^\"]*\"|'[^']*'|[^\s#'\"\-][^:#]*?)[ ]*:(?P<rest>(?:[ ]+.*)?)$"
)
_YAML_PLAIN = re.compile(r"^[A-Za-z0-9_/][A-Za-z0-9_./@+-]*( [A-Za-z0-9_./@+-]+)*$")


def _replace_yaml(text: str, names: _Names, relative: Path) -> tuple[str, int]:
    lines = text.splitlines(keepends=True)
    stack: list[tuple[int, str]] = []
    count = 0
    for index, line in enumerate(lines):
        body = line.rstrip("\r\n")
        match = _YAML_KEY.match(body)
        if match is None:
            continue
        indent = len(match.group("indent"))
        key = match.group("key").strip().strip("\"'")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = [k for _, k in stack] + [key]
        stack.append((indent, key))
        rest = match.group("rest").strip()
        if not rest or rest.startswith(("|", ">", "&", "*", "!", "#")):
            continue
        value = names.find(path)
        if value is not None:
            newline = line[len(body) :]
            lines[index] = f"{match.group('indent')}{match.group('key')}: {_yaml_scalar(value)}"
            lines[index] += newline
            count += 1
    return "".join(lines), count


def _yaml_scalar(value: str) -> str:
    return value if _YAML_PLAIN.match(value) else json.dumps(value, ensure_ascii=False)


def _flat_lines(text: str) -> Iterator[tuple[int, str, str, str]]:
    """(index, prefix up to the value, key, line ending) of each `key=value` line."""
    for index, line in enumerate(text.splitlines(keepends=True)):
        body = line.rstrip("\r\n")
        stripped = body.lstrip()
        if not stripped or stripped[0] in "#!":
            continue
        match = re.match(r"^(\s*(?:export\s+)?)([^=:\s]+)(\s*[=:]\s*|\s+)", body)
        if match:
            yield index, match.group(0), match.group(2), line[len(body) :]


def _replace_flat(text: str, names: _Names, encode) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    lines = text.splitlines(keepends=True)
    count = 0
    for index, prefix, key, ending in _flat_lines(text):
        value = names.find([key])
        if value is None:
            value = names.find(key.split("."))
        if value is not None:
            lines[index] = prefix + encode(value) + ending
            count += 1
    return "".join(lines), count


def _replace_properties(text: str, names: _Names, relative: Path) -> tuple[str, int]:
    def encode(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")

    return _replace_flat(text, names, encode)


def _replace_env(text: str, names: _Names, relative: Path) -> tuple[str, int]:
    def encode(value: str) -> str:
        if re.fullmatch(r"[A-Za-z0-9_./:@+-]*", value):
            return value
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    return _replace_flat(text, names, encode)
