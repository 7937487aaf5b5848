"""Package versions of a new release: explicit ones checked, missing ones asked of the feed.

Every package reference of the process gets one version. An explicit version must obey the
channel's version rules and exist in the feed; otherwise the newest version the channel
allows is taken from the feed. The feed sits behind `PackageVersionSource` so this module
stays plain Python; no source configured means explicit versions are trusted and none can
be chosen.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from cephalo_common.errors import Invalid
from cephalo_common.packages import matches_channel_rule
from cephalo_release.domain.process import canonical_step, package_references

BUILTIN_FEED = "builtin"
Rule = Mapping[str, Any]


class PackageVersionSource(Protocol):
    """The package feed, as release creation needs it (raises `Unavailable` when down)."""

    async def versions(
        self, space_id: uuid.UUID, package_id: str, *, version_range: str, tag: str
    ) -> list[str]:
        """Versions of `package_id` newest first, already filtered by one channel rule."""

    async def exists(self, space_id: uuid.UUID, package_id: str, version: str) -> bool: ...


def rules_for(rules: Sequence[Rule], action: str, reference: str) -> list[Rule]:
    """The channel rules that apply to one package reference of one action."""
    key = f"{action.lower()}:{reference.lower()}"
    return [
        rule
        for rule in rules
        if not (targets := {str(ref).lower() for ref in rule.get("action_packages") or []})
        or action.lower() in targets
        or key in targets
    ]


def describe(rule: Rule) -> str:
    return f"range {rule.get('version_range') or '*'!r}, tag {rule.get('tag') or '*'!r}"


def broken_rule(version: str, rules: Sequence[Rule]) -> Rule | None:
    """The first rule `version` breaks, or None."""
    for rule in rules:
        if not matches_channel_rule(
            version,
            version_range=str(rule.get("version_range") or ""),
            tag=str(rule.get("tag") or ""),
        ):
            return rule
    return None


def _explicit_by_reference(
    references: Sequence[tuple[str, str, dict[str, Any]]], explicit: Sequence[Mapping[str, str]]
) -> dict[tuple[str, str], str]:
    wanted = {
        (str(item["action_name"]).lower(), str(item.get("package_reference", "")).lower()): str(
            item["version"]
        )
        for item in explicit
    }
    known = {(action.lower(), name.lower()) for action, name, _ in references}
    unknown = [f"{action}:{name}" for action, name in wanted if (action, name) not in known]
    if unknown:
        raise Invalid(f"the process has no package reference {', '.join(unknown)}")
    return wanted


async def _check_explicit(
    source: PackageVersionSource | None,
    space_id: uuid.UUID,
    action: str,
    reference: dict[str, Any],
    version: str,
    rules: Sequence[Rule],
) -> None:
    rule = broken_rule(version, rules)
    if rule is not None:
        raise Invalid(
            f'{version} of "{action}" ({reference["package_id"]}) breaks the channel rule '
            f"({describe(rule)})"
        )
    if source is None or not _from_builtin(reference):
        return
    if not await source.exists(space_id, reference["package_id"], version):
        raise Invalid(
            f'{reference["package_id"]} {version} (step "{action}") does not exist in the feed'
        )


async def newest_allowed(
    source: PackageVersionSource, space_id: uuid.UUID, package_id: str, rules: Sequence[Rule]
) -> str | None:
    """The newest version every applicable rule allows; the feed applies the first rule."""
    first = rules[0] if rules else {}
    candidates = await source.versions(
        space_id,
        package_id,
        version_range=str(first.get("version_range") or ""),
        tag=str(first.get("tag") or ""),
    )
    return next((version for version in candidates if broken_rule(version, rules) is None), None)


def _from_builtin(reference: Mapping[str, Any]) -> bool:
    return str(reference.get("feed_id") or BUILTIN_FEED) == BUILTIN_FEED


async def _choose(
    source: PackageVersionSource | None,
    space_id: uuid.UUID,
    action: str,
    reference: dict[str, Any],
    rules: Sequence[Rule],
) -> str:
    package_id = reference["package_id"]
    if source is None:
        raise Invalid(
            f'choose a version of {package_id} (step "{action}"): no package feed is configured'
        )
    if not _from_builtin(reference):
        raise Invalid(
            f'choose a version of {package_id} (step "{action}"): feed '
            f'"{reference.get("feed_id")}" is not the built-in feed'
        )
    version = await newest_allowed(source, space_id, package_id, rules)
    if version is None:
        allowed = "; ".join(describe(rule) for rule in rules) or "any version"
        raise Invalid(
            f'no version of {package_id} (step "{action}") in the feed fits the channel ({allowed})'
        )
    return version


async def select_package_versions(
    source: PackageVersionSource | None,
    space_id: uuid.UUID,
    steps: Sequence[dict[str, Any]],
    explicit: Sequence[Mapping[str, str]],
    rules: Sequence[Rule],
) -> list[dict[str, str]]:
    """One version per package reference of the process, in process order."""
    references = package_references(steps)
    wanted = _explicit_by_reference(references, explicit)
    selected = []
    for action, name, reference in references:
        applicable = rules_for(rules, action, name)
        version = wanted.get((action.lower(), name.lower()))
        if version is None:
            version = await _choose(source, space_id, action, reference, applicable)
        else:
            await _check_explicit(source, space_id, action, reference, version, applicable)
        selected.append({"action_name": action, "package_reference": name, "version": version})
    return selected


def versions_used(releases: Sequence[Any], package_id: str) -> list[str]:
    """Every version of `package_id` (case-insensitive) the releases selected, in their order."""
    wanted = package_id.lower()
    found: dict[str, None] = {}
    for release in releases:
        ids = {
            (action.lower(), name.lower()): str(reference["package_id"]).lower()
            for action, name, reference in package_references(
                [canonical_step(step) for step in release.process_snapshot]
            )
        }
        for package in release.selected_packages:
            key = (str(package["action_name"]).lower(), str(package["package_reference"]).lower())
            if ids.get(key) == wanted:
                found.setdefault(str(package["version"]), None)
    return list(found)
