"""The routing table and space handling, as pure functions (no server)."""

from __future__ import annotations

import uuid

import pytest

from cephalo_common.errors import NotFound
from cephalo_gateway.domain.routing import Upstream, resolve_route

SPACE_ID = uuid.UUID("0190f5c2-7b1e-7c3a-9a55-2f1d4c6b8e01")


@pytest.mark.parametrize(
    ("collection", "owner"),
    [
        ("environments", Upstream.RELEASE_SERVICE),
        ("projects", Upstream.RELEASE_SERVICE),
        ("releases", Upstream.RELEASE_SERVICE),
        ("deployments", Upstream.RELEASE_SERVICE),
        ("lifecycles", Upstream.RELEASE_SERVICE),
        ("channels", Upstream.RELEASE_SERVICE),
        ("variables", Upstream.RELEASE_SERVICE),
        ("tasks", Upstream.DEPLOY_ORCHESTRATOR),
        ("machines", Upstream.AGENT_GATEWAY),
        ("workers", Upstream.AGENT_GATEWAY),
        ("worker-pools", Upstream.AGENT_GATEWAY),
        ("packages", Upstream.PACKAGE_FEED),
        ("feeds", Upstream.PACKAGE_FEED),
    ],
)
def test_each_collection_goes_to_its_owner(collection: str, owner: Upstream) -> None:
    route = resolve_route(f"/api/v1/spaces/{SPACE_ID}/{collection}/some-id/child")
    assert route.upstream is owner
    assert route.upstream_path() == f"/api/v1/spaces/{SPACE_ID}/{collection}/some-id/child"


def test_spaces_themselves_belong_to_release_service() -> None:
    assert resolve_route("/api/v1/spaces").upstream is Upstream.RELEASE_SERVICE
    route = resolve_route("/api/v1/spaces/default")
    assert route.upstream is Upstream.RELEASE_SERVICE
    assert route.space == "default" and not route.needs_space_lookup
    assert route.upstream_path() == "/api/v1/spaces/default"


def test_the_server_certificate_belongs_to_agent_gateway() -> None:
    route = resolve_route("/api/v1/server-certificate")
    assert route.upstream is Upstream.AGENT_GATEWAY
    assert route.space is None and route.upstream_path() == "/api/v1/server-certificate"


def test_a_slug_below_a_space_needs_a_lookup_and_is_replaced_by_the_id() -> None:
    route = resolve_route("/api/v1/spaces/default/environments/Production")
    assert route.needs_space_lookup and route.space_id is None
    assert route.upstream_path(SPACE_ID) == f"/api/v1/spaces/{SPACE_ID}/environments/Production"


def test_an_unresolved_slug_is_never_forwarded() -> None:
    with pytest.raises(ValueError, match="resolved"):
        resolve_route("/api/v1/spaces/default/packages").upstream_path()


def test_a_uuid_space_needs_no_lookup_and_is_forwarded_canonically() -> None:
    route = resolve_route(f"/api/v1/spaces/{str(SPACE_ID).upper()}/tasks")
    assert not route.needs_space_lookup and route.space_id == SPACE_ID
    assert route.upstream_path() == f"/api/v1/spaces/{SPACE_ID}/tasks"


def test_percent_encoding_below_the_space_is_kept_as_sent() -> None:
    route = resolve_route("/api/v1/spaces/default/environments/Blue%2FGreen%20Prod")
    assert route.upstream_path(SPACE_ID).endswith("/environments/Blue%2FGreen%20Prod")


def test_an_encoded_slug_is_decoded_for_the_lookup() -> None:
    assert resolve_route("/api/v1/spaces/my%2Dspace/tasks").space == "my-space"


def test_a_trailing_slash_is_dropped() -> None:
    route = resolve_route(f"/api/v1/spaces/{SPACE_ID}/machines/")
    assert route.path == f"/api/v1/spaces/{SPACE_ID}/machines"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/spaces/default/unicorns",
        "/api/v1/spaces/default/audit",
        "/api/v1/nothing-here",
        "/api/v1/server-certificate/extra",
        "/api/v1/",
        "/api/v1/spaces//environments",
        "/api/v2/spaces",
        "/api/v1x/spaces",
    ],
)
def test_a_path_no_service_owns_is_not_found(path: str) -> None:
    with pytest.raises(NotFound):
        resolve_route(path)


def test_an_unknown_collection_names_itself_in_the_problem() -> None:
    with pytest.raises(NotFound, match="'unicorns'"):
        resolve_route("/api/v1/spaces/default/unicorns")
