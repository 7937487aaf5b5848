"""Which package version each step of a release gets, the way `octo create-release` picks.

Order per package reference: an explicit `--package` naming the step (action), else one
naming the package id, else `--package-version`, else the newest version the channel's rule
allows (asked of the feed). Plain functions so unit tests drive them without a server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cephalo_cli.errors import UsageError


@dataclass(frozen=True)
class PackageSpec:
    """`STEP:VERSION`, `PACKAGEID:VERSION` or `STEP:REFERENCE:VERSION` (`*` matches any)."""

    name: str
    reference: str | None
    version: str

    @classmethod
    def parse(cls, text: str) -> PackageSpec:
        parts = [part.strip() for part in text.split(":")]
        if len(parts) == 2 and all(parts):
            return cls(parts[0], None, parts[1])
        if len(parts) == 3 and parts[0] and parts[2]:
            return cls(parts[0], parts[1], parts[2])
        raise UsageError(
            f"--package {text!r}: expected STEP:VERSION, PACKAGEID:VERSION or STEP:REFERENCE:VERSION"
        )


@dataclass(frozen=True)
class Reference:
    """One package a release must pin: the action, the reference name and the package id."""

    action: str
    name: str
    package_id: str


def references(steps: Sequence[Mapping[str, Any]]) -> list[Reference]:
    return [
        Reference(
            str(action.get("name") or step["name"]),
            str(package.get("name", "")),
            package["package_id"],
        )
        for step in steps
        for action in step.get("actions") or []
        for package in action.get("packages") or []
    ]


def _matches(pattern: str, value: str) -> bool:
    return pattern == "*" or pattern.lower() == value.lower()


def explicit_version(reference: Reference, specs: Sequence[PackageSpec]) -> str | None:
    for spec in specs:
        if (
            spec.reference is not None
            and _matches(spec.name, reference.action)
            and _matches(spec.reference, reference.name)
        ):
            return spec.version
    for spec in specs:
        if spec.reference is None and _matches(spec.name, reference.action):
            return spec.version
    for spec in specs:
        if spec.reference is None and _matches(spec.name, reference.package_id):
            return spec.version
    return None


def unused_specs(refs: Sequence[Reference], specs: Sequence[PackageSpec]) -> list[PackageSpec]:
    """Specs that name nothing in the process (a typo should not pass silently)."""
    return [spec for spec in specs if not any(explicit_version(ref, [spec]) for ref in refs)]


def channel_rule(rules: Sequence[Mapping[str, Any]], reference: Reference) -> tuple[str, str]:
    """(version range, tag) of the first rule that covers this reference ('' = anything)."""
    keys = {reference.action.lower(), f"{reference.action}:{reference.name}".lower()}
    for rule in rules:
        targets = {str(target).lower() for target in rule.get("action_packages") or []}
        if not targets or targets & keys:
            return str(rule.get("version_range") or ""), str(rule.get("tag") or "")
    return "", ""


def select(
    steps: Sequence[Mapping[str, Any]],
    specs: Sequence[PackageSpec],
    default_version: str | None,
    newest: Callable[[Reference, str, str], str],
    rules: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, str]]:
    """The `packages` of a release-create request; `newest` asks the feed."""
    refs = references(steps)
    unused = unused_specs(refs, specs)
    if unused:
        names = ", ".join(f"{spec.name}" for spec in unused)
        raise UsageError(f"--package names no step or package of this project: {names}")
    selected = []
    for reference in refs:
        version = explicit_version(reference, specs) or default_version
        if version is None:
            version = newest(reference, *channel_rule(rules, reference))
        selected.append(
            {
                "action_name": reference.action,
                "package_reference": reference.name,
                "version": version,
            }
        )
    return selected
