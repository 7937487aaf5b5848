"""Variable sets: a project's variables and the space's library variable sets.

A set is one document (its list of variables) edited under optimistic concurrency. Names,
templates, scopes and self-references are checked when it is saved, each problem reported
with where it is and why. Sensitive values never stay in the document: they are encrypted
into `sensitive_values` (see `secrets`) and a read says only whether one is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cephalo_common.errors import Conflict, Invalid, NotFound
from cephalo_common.variables import (
    MASK,
    ScopeField,
    SourceKind,
    TemplateError,
    VariableDictionary,
    VariableSource,
    VariableValue,
    scope_problems,
    validate,
    validate_variable_name,
)
from cephalo_common.variables.ast import fold
from cephalo_common.variables.errors import ErrorCode
from cephalo_release.db.models import Project, Space, VariableSet
from cephalo_release.db.repositories import Repositories
from cephalo_release.db.variable_repositories import LIBRARY, VariableSetRepository
from cephalo_release.domain import secrets
from cephalo_release.domain.channels import find_channel
from cephalo_release.domain.common import check_version, resolve, unique_slug
from cephalo_release.domain.environments import find_environment

SENSITIVE = "Sensitive"
TEMPLATE_TYPES = frozenset({"Text"})
Variable = dict[str, Any]
"""`id`, `name`, `type`, `value` (None for a sensitive one), `description`, `scope`
(`ScopeField` value → ids), `prompt` (`label`, `description`, `required`) or None."""


def sets(repos: Repositories) -> VariableSetRepository:
    return VariableSetRepository(repos.session)


@dataclass(frozen=True)
class Saved:
    """A set as a reader sees it: the document and which sensitive values are stored."""

    row: VariableSet
    stored: set[str]
    included: list[VariableSet]


def _problem(index: int, field: str, error: TemplateError) -> dict[str, Any]:
    return {
        "field": f"variables.{index}.{field}",
        "message": str(error),
        "code": error.code.value,
        "position": error.position,
        "line": error.line,
        "column": error.column,
    }


def _plain(index: int, field: str, message: str, code: str = "invalid") -> dict[str, Any]:
    return {"field": f"variables.{index}.{field}", "message": message, "code": code}


def _raise(problems: list[dict[str, Any]]) -> None:
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise Invalid(f"{first['field']}: {first['message']}{more}", errors=problems)


def _scope(raw: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    return {
        ScopeField(field).value: sorted({str(item) for item in ids})
        for field, ids in raw.items()
        if ids
    }


def to_value(
    item: Mapping[str, Any],
    source: VariableSource,
    index: int,
    plaintexts: Mapping[str, str] | None = None,
) -> VariableValue:
    """A candidate for precedence; a sensitive value is its plaintext when given, else masked."""
    sensitive = item["type"] == SENSITIVE
    value = (
        (plaintexts or {}).get(item["id"], "")
        if sensitive and plaintexts is not None
        else MASK
        if sensitive
        else item.get("value") or ""
    )
    return VariableValue(
        id=item["id"],
        name=item["name"],
        value=value,
        is_sensitive=sensitive,
        scope={ScopeField(f): frozenset(ids) for f, ids in item.get("scope", {}).items()},
        source=source,
        declaration_index=index,
    )


def _check_items(
    items: Sequence[Mapping[str, Any]], kind: SourceKind, known_ids: set[str]
) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    seen_ids: set[str] = set()
    seen_scopes: set[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]] = set()
    for index, item in enumerate(items):
        problems += [_problem(index, "name", e) for e in validate_variable_name(item["name"])]
        if item.get("id") is not None:
            if item["id"] not in known_ids:
                problems.append(_plain(index, "id", f"no variable {item['id']} in this set"))
            elif item["id"] in seen_ids:
                problems.append(_plain(index, "id", f"variable {item['id']} appears twice"))
            seen_ids.add(item["id"])
        if item["type"] in TEMPLATE_TYPES and item.get("value"):
            problems += [_problem(index, "value", e) for e in validate(item["value"])]
        scope = _scope(item.get("scope") or {})
        key = (fold(item["name"]), tuple((f, tuple(ids)) for f, ids in sorted(scope.items())))
        if key in seen_scopes:
            problems.append(
                _plain(index, "name", f"{item['name']!r} is declared twice with the same scope")
            )
        seen_scopes.add(key)
        candidate = to_value({**item, "id": "check", "scope": scope}, VariableSource(kind=kind), 0)
        problems += [_plain(index, "scope", message) for message in scope_problems(candidate)]
    return problems


def _cycles(values: Sequence[VariableValue], positions: Mapping[str, int]) -> list[dict[str, Any]]:
    """Self-references among every value of every name, whatever their scopes.

    Each name's values are joined into one template, so a reference from any of its values
    is followed: a loop that only some contexts could hit is still reported.
    """
    joined: dict[str, str] = {}
    names: dict[str, str] = {}
    for value in values:
        if value.is_sensitive:
            continue
        key = fold(value.name)
        joined[key] = joined.get(key, "") + value.value
        names.setdefault(key, value.name)
    dictionary = VariableDictionary(joined)
    problems = []
    for key, template in joined.items():
        if "#{" not in template or key not in positions:
            continue
        for error in dictionary.render("#{" + names[key] + "}").errors:
            if error.code is ErrorCode.CYCLE:
                problems.append(_plain(positions[key], "value", error.message, "cycle"))
                break
    return problems


async def _resolve_scope_refs(
    repos: Repositories, space: Space, project: Project | None, items: list[Variable]
) -> list[dict[str, Any]]:
    """Environments (and a project's channels) may be named by id, slug or name; they are
    stored as ids, and one that does not exist is a problem."""
    problems = []
    for index, item in enumerate(items):
        scope = item["scope"]
        for field in ("Environment", "Channel"):
            if field not in scope or (field == "Channel" and project is None):
                continue
            resolved, unknown = set(), []
            for ref in scope[field]:
                found = (
                    await find_environment(repos, space, ref)
                    if field == "Environment"
                    else await find_channel(repos, project, ref)  # type: ignore[arg-type]
                )
                if found is None:
                    unknown.append(ref)
                else:
                    resolved.add(str(found.id))
            scope[field] = sorted(resolved)
            if unknown:
                problems.append(_plain(index, "scope", f"{field} {', '.join(unknown)} not found"))
    return problems


def _normalized(items: Sequence[Mapping[str, Any]]) -> list[Variable]:
    return [
        {
            "id": str(item.get("id") or uuid.uuid4()),
            "name": item["name"],
            "type": item["type"],
            "value": None if item["type"] == SENSITIVE else (item.get("value") or ""),
            "description": item.get("description") or "",
            "scope": _scope(item.get("scope") or {}),
            "prompt": dict(item["prompt"]) if item.get("prompt") else None,
        }
        for item in items
    ]


async def _save(
    repos: Repositories,
    space: Space,
    row: VariableSet,
    items: Sequence[Mapping[str, Any]],
    *,
    project: Project | None,
    included: Sequence[VariableSet] = (),
) -> None:
    """Validate everything first: a rejected save writes nothing."""
    kind = SourceKind.LIBRARY_SET if row.kind == LIBRARY else SourceKind.PROJECT
    problems = _check_items(items, kind, {item["id"] for item in row.variables})
    _raise(problems)
    document = _normalized(items)
    _raise(await _resolve_scope_refs(repos, space, project, document))
    source = VariableSource(kind=kind, id=str(row.id))
    values = [to_value(item, source, i) for i, item in enumerate(document)]
    positions = {fold(item["name"]): index for index, item in enumerate(document)}
    for order, other in enumerate(included):
        other_source = VariableSource(kind=SourceKind.LIBRARY_SET, id=str(other.id), order=order)
        values += [to_value(item, other_source, i) for i, item in enumerate(other.variables)]
    _raise(_cycles(values, positions))
    new_secrets = {
        item["id"]: str(raw["value"])
        for item, raw in zip(document, items, strict=True)
        if item["type"] == SENSITIVE and raw.get("value") is not None
    }
    await secrets.store(repos.session, row.id, new_secrets)
    await secrets.keep_only(
        repos.session, row.id, [item["id"] for item in document if item["type"] == SENSITIVE]
    )
    row.variables = document
    row.version += 1
    await repos.flush()


async def _saved(repos: Repositories, row: VariableSet) -> Saved:
    included_ids = [uuid.UUID(id) for id in row.included_set_ids]
    found = await sets(repos).find_many(included_ids)
    return Saved(
        row,
        await secrets.stored_ids(repos.session, row.id),
        [found[id] for id in included_ids if id in found],
    )


async def project_set(repos: Repositories, project: Project, *, lock: bool = False) -> VariableSet:
    repository = sets(repos)
    found = await repository.for_project(project.id, lock=lock)
    if found is None:
        await repository.ensure_for_project(project.space_id, project.id)
        found = await repository.for_project(project.id, lock=lock)
    assert found is not None
    return found


async def read_project_variables(repos: Repositories, project: Project) -> Saved:
    return await _saved(repos, await project_set(repos, project))


async def update_project_variables(
    repos: Repositories,
    space: Space,
    project: Project,
    *,
    expected_version: int | None,
    variables: Sequence[Mapping[str, Any]],
    library_sets: Sequence[str],
) -> Saved:
    row = await project_set(repos, project, lock=True)
    check_version(expected_version, row.version, "project variables")
    included: list[VariableSet] = []
    for ref in library_sets:
        found = await get_library_set(repos, space, ref)
        if found not in included:
            included.append(found)
    await _save(repos, space, row, variables, project=project, included=included)
    row.included_set_ids = [str(found.id) for found in included]
    await repos.flush()
    return await _saved(repos, row)


async def find_library_set(repos: Repositories, space: Space, ref: str) -> VariableSet | None:
    repository = sets(repos)
    return await resolve(
        ref,
        lambda id: repository.find_in_space(space.id, id),
        lambda slug: repository.find_by_slug(space.id, slug),
        lambda name: repository.find_by_name(space.id, name),
    )


async def get_library_set(repos: Repositories, space: Space, ref: str) -> VariableSet:
    found = await find_library_set(repos, space, ref)
    if found is None:
        raise NotFound(f"library variable set {ref!r} was not found in this space")
    return found


async def read_library_set(repos: Repositories, space: Space, ref: str) -> Saved:
    return await _saved(repos, await get_library_set(repos, space, ref))


async def create_library_set(
    repos: Repositories,
    space: Space,
    *,
    name: str,
    description: str,
    variables: Sequence[Mapping[str, Any]],
) -> Saved:
    repository = sets(repos)
    row = VariableSet(
        id=uuid.uuid4(),
        space_id=space.id,
        kind=LIBRARY,
        project_id=None,
        name=name,
        slug=unique_slug(name, await repository.slugs_in_space(space.id), "variables"),
        description=description,
        variables=[],
        included_set_ids=[],
        version=0,
    )
    await repository.add(row)
    await _save(repos, space, row, variables, project=None)
    return await _saved(repos, row)


async def update_library_set(
    repos: Repositories,
    space: Space,
    ref: str,
    *,
    expected_version: int | None,
    name: str,
    description: str,
    variables: Sequence[Mapping[str, Any]],
) -> Saved:
    row = await get_library_set(repos, space, ref)
    check_version(expected_version, row.version, "library variable set")
    row.name, row.description = name, description
    await repos.flush()
    await _save(repos, space, row, variables, project=None)
    return await _saved(repos, row)


async def delete_library_set(
    repos: Repositories, space: Space, ref: str, expected_version: int | None
) -> None:
    """A set that projects include cannot go: their releases would silently change meaning."""
    row = await get_library_set(repos, space, ref)
    check_version(expected_version, row.version, "library variable set", required=False)
    users = await sets(repos).count_including(row.id)
    if users:
        raise Conflict(f'library variable set "{row.name}" is included by {users} project(s)')
    await secrets.keep_only(repos.session, row.id, [])
    await repos.session.delete(row)
    await repos.flush()
