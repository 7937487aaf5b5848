"""What a release keeps of the variables, what a deployment sends, and the preview.

A release snapshots the project's variables and its included library sets, in inclusion
order; sensitive values are re-encrypted for the release (bound to its id), so editing or
deleting a set never changes a release. "Update variables" takes a new snapshot of the
variables only. A deployment sends the snapshot's candidates, decrypted, and the prompted
values its requester supplied (kept encrypted on the deployment until it is announced).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from cephalo_common.errors import Invalid
from cephalo_common.ids import utc_now
from cephalo_common.variables import (
    MASK,
    Candidate,
    ResolutionContext,
    SourceKind,
    VariableDictionary,
    VariableSource,
    VariableValue,
    resolve,
)
from cephalo_common.variables.ast import fold
from cephalo_release.db.models import Project, Release, VariableSet
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain import secrets
from cephalo_release.domain.variables import SENSITIVE, project_set, sets, to_value

SNAPSHOT_FORMAT = 1
PROMPTED_PREFIX = "prompted:"


def _entries(
    row: VariableSet, kind: SourceKind, order: int, stored: set[str]
) -> list[dict[str, Any]]:
    return [
        {
            **item,
            "has_value": item["id"] in stored if item["type"] == SENSITIVE else True,
            "source": {"kind": kind.value, "id": str(row.id), "order": order, "name": row.name},
            "declaration_index": index,
        }
        for index, item in enumerate(row.variables)
    ]


async def take_snapshot(repos: Repositories, release: Release, project: Project) -> None:
    """Copy the project's and included sets' variables into the release (sensitive ones
    re-encrypted for it); a previous snapshot of the release is replaced."""
    own = await project_set(repos, project)
    library_ids = [uuid.UUID(id) for id in own.included_set_ids]
    found = await sets(repos).find_many(library_ids)
    sources = [(own, SourceKind.PROJECT, 0)] + [
        (found[id], SourceKind.LIBRARY_SET, order)
        for order, id in enumerate(library_ids)
        if id in found
    ]
    entries: list[dict[str, Any]] = []
    plaintexts: dict[str, str] = {}
    for row, kind, order in sources:
        stored = await secrets.load(repos.session, row.id)
        plaintexts.update(stored)
        entries += _entries(row, kind, order, set(stored))
    await secrets.keep_only(repos.session, release.id, list(plaintexts))
    await secrets.store(repos.session, release.id, plaintexts)
    release.variables_snapshot = {
        "format": SNAPSHOT_FORMAT,
        "taken_at": utc_now().isoformat(),
        "project_variables_version": own.version,
        "library_sets": [
            {"id": str(row.id), "name": row.name, "version": row.version, "order": order}
            for row, kind, order in sources
            if kind is SourceKind.LIBRARY_SET
        ],
        "variables": entries,
    }
    await repos.flush()


def snapshot_entries(release: Release) -> list[dict[str, Any]]:
    return list(release.variables_snapshot.get("variables", []))


def snapshot_values(
    entries: Sequence[Mapping[str, Any]], plaintexts: Mapping[str, str] | None = None
) -> list[VariableValue]:
    """Candidates of a snapshot: sensitive values decrypted when `plaintexts` is given."""
    return [
        to_value(
            entry,
            VariableSource(
                kind=SourceKind(entry["source"]["kind"]),
                id=entry["source"]["id"],
                order=entry["source"]["order"],
            ),
            entry["declaration_index"],
            plaintexts,
        )
        for entry in entries
    ]


async def current_entries(repos: Repositories, project: Project) -> list[dict[str, Any]]:
    """The project's variables as a release would snapshot them now (nothing decrypted)."""
    own = await project_set(repos, project)
    library_ids = [uuid.UUID(id) for id in own.included_set_ids]
    found = await sets(repos).find_many(library_ids)
    entries = _entries(own, SourceKind.PROJECT, 0, await secrets.stored_ids(repos.session, own.id))
    for order, id in enumerate(library_ids):
        if id in found:
            stored = await secrets.stored_ids(repos.session, id)
            entries += _entries(found[id], SourceKind.LIBRARY_SET, order, stored)
    return entries


def check_prompted(
    entries: Sequence[Mapping[str, Any]], supplied: Mapping[str, str]
) -> dict[str, str]:
    """The supplied prompted values by their declared names; every required prompt answered.

    A prompt is answered by a supplied value or, failing that, by the variable's own value
    (its default)."""
    prompted = {fold(e["name"]): e for e in entries if e.get("prompt")}
    unknown = [name for name in supplied if fold(name) not in prompted]
    if unknown:
        raise Invalid(f"not prompted variables of this release: {', '.join(sorted(unknown))}")
    answered = {prompted[fold(name)]["name"]: value for name, value in supplied.items()}
    missing = [
        entry["prompt"].get("label") or entry["name"]
        for key, entry in prompted.items()
        if entry["prompt"].get("required")
        and not answered.get(entry["name"])
        and not _has_default(entry)
    ]
    if missing:
        raise Invalid(f"required prompted variables need a value: {', '.join(sorted(missing))}")
    return answered


def _has_default(entry: Mapping[str, Any]) -> bool:
    if entry["type"] == SENSITIVE:
        return bool(entry.get("has_value"))
    return bool(entry.get("value"))


async def store_prompted(
    repos: Repositories, deployment_id: uuid.UUID, values: Mapping[str, str]
) -> None:
    await secrets.store(
        repos.session, deployment_id, {PROMPTED_PREFIX + k: v for k, v in values.items()}
    )


async def load_prompted(repos: Repositories, deployment_id: uuid.UUID) -> dict[str, str]:
    stored = await secrets.load(repos.session, deployment_id)
    return {
        key.removeprefix(PROMPTED_PREFIX): value
        for key, value in stored.items()
        if key.startswith(PROMPTED_PREFIX)
    }


async def deployment_values(
    repos: Repositories, release: Release, deployment_id: uuid.UUID
) -> tuple[list[VariableValue], dict[str, str]]:
    """The release's candidates (decrypted) and the deployment's prompted values."""
    entries = snapshot_entries(release)
    plaintexts = (
        await secrets.load(repos.session, release.id)
        if any(e["type"] == SENSITIVE for e in entries)
        else {}
    )
    return snapshot_values(entries, plaintexts), await load_prompted(repos, deployment_id)


def _candidate(candidate: Candidate, entries: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    value = candidate.value
    entry = entries.get(value.id or "", {})
    return {
        "id": value.id,
        "value": MASK if value.is_sensitive else value.value,
        "is_sensitive": value.is_sensitive,
        "type": entry.get("type", "Text"),
        "scope": {field.value: sorted(ids) for field, ids in value.scope.items()},
        "source": entry.get("source", {"kind": value.source.kind.value, "id": value.source.id}),
        "declaration_index": value.declaration_index,
        "outcome": candidate.outcome,
        "levels": list(candidate.levels),
        "rule": candidate.rule.value if candidate.rule else None,
        "mismatch": candidate.mismatch.value if candidate.mismatch else None,
        "reason": candidate.reason,
    }


def preview(entries: Sequence[Mapping[str, Any]], context: ResolutionContext) -> dict[str, Any]:
    """Every variable's winner for `context`, why, and what lost or did not apply.

    Sensitive values are masked, also where another value refers to one."""
    resolution = resolve(snapshot_values(entries), context)
    by_id = {str(e["id"]): e for e in entries}
    dictionary = VariableDictionary(resolution.values())
    variables = []
    for resolved in sorted(resolution.variables.values(), key=lambda v: fold(v.name)):
        winner = resolved.winner
        variables.append(
            {
                "name": resolved.name,
                "value": None
                if winner is None
                else (MASK if winner.is_sensitive else winner.value),
                "evaluated": None if winner is None else dictionary.get(resolved.name),
                "is_sensitive": bool(winner and winner.is_sensitive),
                "rule": resolved.rule.value,
                "explanation": resolved.explanation,
                "tie": resolved.tie,
                "winner": None if winner is None else _candidate(resolved.candidates[0], by_id),
                "candidates": [_candidate(c, by_id) for c in resolved.candidates],
            }
        )
    return {
        "context": context.model_dump(mode="json"),
        "variables": variables,
        "warnings": list(resolution.warnings),
    }
