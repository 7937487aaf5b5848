"""One public OpenAPI document from the gateway's own and each service's.

Paths are unioned. A schema name two services both use for different shapes is
prefixed with the later service's name, and every `$ref` of that service follows.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

Document = dict[str, Any]
SCHEMA_REF = "#/components/schemas/"


def _prefix(service: str) -> str:
    """`release-service` → `ReleaseService_`: a valid component name in any generator."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", service)) + "_"


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        rewritten = {key: _rewrite_refs(value, renames) for key, value in node.items()}
        ref = rewritten.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
            name = ref[len(SCHEMA_REF) :]
            rewritten["$ref"] = SCHEMA_REF + renames.get(name, name)
        return rewritten
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


def _renames(service: str, schemas: Mapping[str, Any], merged: Mapping[str, Any]) -> dict[str, str]:
    """Rename each schema that clashes with a different one of the same name.

    Renaming one schema changes the `$ref`s inside others, so repeat until stable.
    """
    renames: dict[str, str] = {}
    while True:
        rewritten = _rewrite_refs(dict(schemas), renames)
        clashing = {
            name
            for name, schema in rewritten.items()
            if name not in renames and name in merged and merged[name] != schema
        }
        if not clashing:
            return renames
        renames.update({name: _prefix(service) + name for name in clashing})


def _add_document(merged: Document, service: str, document: Mapping[str, Any]) -> None:
    schemas: Mapping[str, Any] = document.get("components", {}).get("schemas", {})
    target: dict[str, Any] = merged["components"]["schemas"]
    renames = _renames(service, schemas, target)
    rewritten = _rewrite_refs(dict(document), renames)
    for name, schema in rewritten.get("components", {}).get("schemas", {}).items():
        target.setdefault(renames.get(name, name), schema)
    for path, operations in rewritten.get("paths", {}).items():
        merged["paths"].setdefault(path, {}).update(operations)
    known_tags = {tag["name"] for tag in merged["tags"]}
    merged["tags"].extend(t for t in rewritten.get("tags", []) if t.get("name") not in known_tags)


def _description(base: str, unavailable: list[str]) -> str:
    if not unavailable:
        return base
    missing = ", ".join(sorted(unavailable))
    note = f"Not included because they did not answer when this document was built: {missing}."
    return f"{base}\n\n{note}" if base else note


def merge_documents(
    gateway: Mapping[str, Any],
    services: Mapping[str, Mapping[str, Any] | None],
    *,
    title: str = "Cephalo API",
) -> Document:
    """Merge the gateway's document with each service's; None marks an unreachable one."""
    merged: Document = {
        "openapi": gateway.get("openapi", "3.1.0"),
        "info": {**copy.deepcopy(gateway.get("info", {})), "title": title},
        "paths": {},
        "components": {"schemas": {}},
        "tags": [],
    }
    _add_document(merged, "api-gateway", gateway)
    for service, document in services.items():
        if document is not None:
            _add_document(merged, service, document)
    unavailable = [service for service, document in services.items() if document is None]
    merged["info"]["description"] = _description(merged["info"].get("description", ""), unavailable)
    if not merged["tags"]:
        del merged["tags"]
    return merged


def operations(document: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path, summary) of every operation, in path order, for the docs page."""
    methods = ("get", "put", "post", "patch", "delete", "head", "options")
    return [
        (method.upper(), path, str(item[method].get("summary", "")))
        for path, item in sorted(document.get("paths", {}).items())
        for method in methods
        if method in item
    ]
