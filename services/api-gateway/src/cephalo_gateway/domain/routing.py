"""Which service owns a public `/api/v1/...` path, and what path that service expects.

Every service's routes live under `/api/v1`; the gateway forwards the path unchanged
except for the space segment, which it turns from a slug into the space's UUID (only
release-service understands slugs).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

from cephalo_common.errors import NotFound

API_PREFIX = "/api/v1"


class Upstream(StrEnum):
    """The services behind the gateway, named as they name themselves."""

    RELEASE_SERVICE = "release-service"
    DEPLOY_ORCHESTRATOR = "deploy-orchestrator"
    PACKAGE_FEED = "package-feed"
    AGENT_GATEWAY = "agent-gateway"


COLLECTIONS: dict[str, Upstream] = {
    "environments": Upstream.RELEASE_SERVICE,
    "projects": Upstream.RELEASE_SERVICE,
    "project-groups": Upstream.RELEASE_SERVICE,
    "dashboard": Upstream.RELEASE_SERVICE,
    "releases": Upstream.RELEASE_SERVICE,
    "deployments": Upstream.RELEASE_SERVICE,
    "lifecycles": Upstream.RELEASE_SERVICE,
    "channels": Upstream.RELEASE_SERVICE,
    "variables": Upstream.RELEASE_SERVICE,
    "library-variable-sets": Upstream.RELEASE_SERVICE,
    "package-references": Upstream.RELEASE_SERVICE,
    "tasks": Upstream.DEPLOY_ORCHESTRATOR,
    "deployment-plans": Upstream.DEPLOY_ORCHESTRATOR,
    "machines": Upstream.AGENT_GATEWAY,
    "machine-policies": Upstream.AGENT_GATEWAY,
    "script-runs": Upstream.AGENT_GATEWAY,
    "workers": Upstream.AGENT_GATEWAY,
    "worker-pools": Upstream.AGENT_GATEWAY,
    "packages": Upstream.PACKAGE_FEED,
    "feeds": Upstream.PACKAGE_FEED,
}
"""Space-scoped collections: `/api/v1/spaces/{space}/<collection>/...`."""

SYSTEM_ROUTES: dict[str, Upstream] = {
    "server-certificate": Upstream.AGENT_GATEWAY,
}
"""Routes outside any space: `/api/v1/<name>`."""


def parse_space_id(ref: str) -> uuid.UUID | None:
    """The UUID a space reference spells, or None when it is a slug."""
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


@dataclass(frozen=True)
class Route:
    """A public request path resolved to its owner.

    `space` is the decoded space segment when the path has one; `tail` is the rest of the
    path after it, still percent-encoded, so names with reserved characters survive.
    """

    upstream: Upstream
    path: str
    space: str | None = None
    tail: str = ""

    @property
    def space_id(self) -> uuid.UUID | None:
        return parse_space_id(self.space) if self.space is not None else None

    @property
    def needs_space_lookup(self) -> bool:
        """Only release-service takes slugs, so a slug below a space must become a UUID."""
        return self.space is not None and self.tail != "" and self.space_id is None

    def upstream_path(self, space_id: uuid.UUID | None = None) -> str:
        """The path to send upstream, with the space segment as a canonical UUID.

        A space's own path (`/api/v1/spaces/{space}`) goes to release-service as given.
        """
        if self.space is None or self.tail == "":
            return self.path
        resolved = space_id or self.space_id
        if resolved is None:
            raise ValueError(f"space {self.space!r} must be resolved to its id first")
        return f"{API_PREFIX}/spaces/{resolved}{self.tail}"


def _segments(raw_path: str) -> list[str]:
    if raw_path != API_PREFIX and not raw_path.startswith(API_PREFIX + "/"):
        raise NotFound(f"no API route {raw_path!r}")
    segments = raw_path[len(API_PREFIX) + 1 :].split("/")
    if segments and segments[-1] == "":
        segments.pop()
    if not segments or "" in segments:
        raise NotFound(f"no API route {raw_path!r}")
    return segments


def resolve_route(raw_path: str) -> Route:
    """Resolve a percent-encoded path; raise `NotFound` when no service owns it.

    A trailing slash is dropped, so `/api/v1/spaces/` means `/api/v1/spaces`.
    """
    segments = _segments(raw_path)
    path = f"{API_PREFIX}/{'/'.join(segments)}"
    head = segments[0]
    if head != "spaces":
        if len(segments) == 1 and head in SYSTEM_ROUTES:
            return Route(SYSTEM_ROUTES[head], path)
        raise NotFound(f"no API route {path!r}")
    if len(segments) == 1:
        return Route(Upstream.RELEASE_SERVICE, path)
    space = unquote(segments[1])
    if len(segments) == 2:
        return Route(Upstream.RELEASE_SERVICE, path, space=space)
    collection = segments[2]
    upstream = COLLECTIONS.get(collection)
    if upstream is None:
        raise NotFound(f"no collection {unquote(collection)!r} in a space")
    return Route(upstream, path, space=space, tail="/" + "/".join(segments[2:]))


OCTOPUS_PREFIX = "/api"
OCTOPUS_FORWARDED: dict[tuple[str, ...], Upstream] = {
    ("packages", "raw"): Upstream.PACKAGE_FEED,
}
"""Octopus build-server paths `/api/{space}/<tail>` that are plain forwards (the rest are
translated by `cephalo_gateway.octopus`)."""


def octopus_route(raw_path: str) -> Route | None:
    """`/api/{space}/packages/raw` → package-feed's `/api/v1/spaces/{space}/packages/raw`."""
    if not raw_path.startswith(OCTOPUS_PREFIX + "/"):
        return None
    segments = raw_path[len(OCTOPUS_PREFIX) + 1 :].rstrip("/").split("/")
    if len(segments) < 2 or segments[0] in ("v1", "spaces", "tasks", "") or "" in segments:
        return None
    tail = tuple(segments[1:])
    upstream = OCTOPUS_FORWARDED.get(tail)
    if upstream is None:
        return None
    space = unquote(segments[0])
    path = f"{API_PREFIX}/spaces/{segments[0]}/{'/'.join(tail)}"
    return Route(upstream, path, space=space, tail="/" + "/".join(tail))


def is_package_transfer(route: Route, method: str) -> bool:
    """A package push or a package content download: the bulk routes the gateway streams
    through its lean client (`upstream/streaming.py`)."""
    if route.upstream is not Upstream.PACKAGE_FEED:
        return False
    tail = route.tail.split("/")[1:]
    if method == "POST":
        return tail in (["packages"], ["packages", "raw"])
    if method in ("GET", "HEAD"):
        return len(tail) == 5 and (tail[0], tail[2], tail[4]) == ("packages", "versions", "content")
    return False
