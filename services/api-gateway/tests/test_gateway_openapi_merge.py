"""Merging the services' OpenAPI documents into one, as a pure function."""

from __future__ import annotations

from typing import Any

from cephalo_gateway.domain.openapi import merge_documents, operations

VALIDATION_ERROR = {"type": "object", "properties": {"msg": {"type": "string"}}}


def document(paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "x", "version": "0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


GATEWAY = document(
    {"/api/v1": {"get": {"summary": "Root"}}},
    {"ValidationError": VALIDATION_ERROR},
)


def test_paths_of_every_service_are_present() -> None:
    merged = merge_documents(
        GATEWAY,
        {
            "release-service": document({"/api/v1/spaces": {"get": {}, "post": {}}}, {}),
            "package-feed": document({"/api/v1/spaces/{space_id}/packages": {"get": {}}}, {}),
        },
    )
    assert set(merged["paths"]) == {
        "/api/v1",
        "/api/v1/spaces",
        "/api/v1/spaces/{space_id}/packages",
    }
    assert merged["info"]["title"] == "Cephalo API"


def test_identical_schemas_are_shared_and_clashing_ones_are_prefixed() -> None:
    release_space = {"type": "object", "properties": {"slug": {"type": "string"}}}
    feed_space = {"type": "object", "properties": {"quota": {"type": "integer"}}}
    merged = merge_documents(
        GATEWAY,
        {
            "release-service": document(
                {"/a": {"get": {"responses": {"200": ref("Space")}}}},
                {"Space": release_space, "ValidationError": VALIDATION_ERROR},
            ),
            "package-feed": document(
                {"/b": {"get": {"responses": {"200": ref("Space")}}}},
                {"Space": feed_space, "ValidationError": VALIDATION_ERROR},
            ),
        },
    )
    schemas = merged["components"]["schemas"]
    assert set(schemas) == {"ValidationError", "Space", "PackageFeed_Space"}
    assert schemas["Space"] == release_space and schemas["PackageFeed_Space"] == feed_space
    assert merged["paths"]["/a"]["get"]["responses"]["200"] == ref("Space")
    assert merged["paths"]["/b"]["get"]["responses"]["200"] == ref("PackageFeed_Space")


def test_a_schema_that_refers_to_a_renamed_one_is_renamed_too() -> None:
    wrapper = {"type": "object", "properties": {"space": ref("Space")}}
    merged = merge_documents(
        document({}, {"Space": {"type": "string"}, "Page": wrapper}),
        {"package-feed": document({}, {"Space": {"type": "integer"}, "Page": wrapper})},
    )
    schemas = merged["components"]["schemas"]
    assert schemas["PackageFeed_Page"]["properties"]["space"] == ref("PackageFeed_Space")
    assert schemas["Page"] == wrapper


def test_an_unreachable_service_is_named_in_the_description() -> None:
    merged = merge_documents(GATEWAY, {"agent-gateway": None, "release-service": document({}, {})})
    assert "agent-gateway" in merged["info"]["description"]
    assert "release-service" not in merged["info"]["description"]


def test_operations_list_every_method_of_every_path() -> None:
    merged = merge_documents(GATEWAY, {"release-service": document({"/z": {"post": {}}}, {})})
    assert operations(merged) == [("GET", "/api/v1", "Root"), ("POST", "/z", "")]
