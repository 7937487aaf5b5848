"""Which requests carry a signed package download link instead of an API key.

package-feed's `download-url` endpoint hands agents a short-lived link
`/api/v1/spaces/{space id}/packages/{id}/versions/{version}/content?expires=&signature=`;
the signature is the credential and package-feed verifies it. The gateway lets exactly
that shape through without a key and nothing else: GET or HEAD, the space as an id, one
package and one version segment, and a query of `expires` and `signature` only (once
each, both non-empty), so the feed cannot receive the request without checking it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote

from cephalo_gateway.domain.routing import API_PREFIX, parse_space_id

SIGNED_METHODS = frozenset({"GET", "HEAD"})
SIGNED_PARAMETERS = ("expires", "signature")
MAX_QUERY_LENGTH = 512


def _plain_segment(raw: str) -> bool:
    """A name segment that decodes to one segment (no `/`, no dot-segment, no control)."""
    decoded = unquote(raw)
    return (
        decoded not in ("", ".", "..")
        and "/" not in decoded
        and "\\" not in decoded
        and decoded.isprintable()
    )


def is_signed_content_path(raw_path: str) -> bool:
    """`/api/v1/spaces/{uuid}/packages/{id}/versions/{version}/content`, percent-encoded."""
    if not raw_path.startswith(API_PREFIX + "/"):
        return False
    segments = raw_path[len(API_PREFIX) + 1 :].split("/")
    if len(segments) != 7:
        return False
    spaces, space, packages, package_id, versions, version, content = segments
    return (
        (spaces, packages, versions, content) == ("spaces", "packages", "versions", "content")
        and parse_space_id(unquote(space)) is not None
        and _plain_segment(package_id)
        and _plain_segment(version)
    )


def has_signature_query(query: str) -> bool:
    """Exactly `expires` and `signature`, once each, both with a value."""
    if not query or len(query) > MAX_QUERY_LENGTH:
        return False
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return False
    names = sorted(name for name, _ in pairs)
    return names == sorted(SIGNED_PARAMETERS) and all(value for _, value in pairs)


def is_signed_download(method: str, raw_path: str, query: str) -> bool:
    """Whether this request may go to package-feed on the strength of its signature."""
    return (
        method.upper() in SIGNED_METHODS
        and is_signed_content_path(raw_path)
        and has_signature_query(query)
    )
