"""Which headers cross the gateway, in each direction.

Requests carry an allow-list: identity (cookies, API keys) ends at the gateway, and later
an internal token replaces it. Responses carry everything except hop-by-hop headers and
those the gateway's own server writes.
"""

from __future__ import annotations

from collections.abc import Iterable

Header = tuple[str, str]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
FORWARDED_REQUEST_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "content-encoding",
        "content-length",
        "content-type",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "range",
        "user-agent",
    }
)
OWN_RESPONSE_HEADERS = frozenset({"date", "server", "x-request-id"})


def _connection_tokens(headers: Iterable[Header]) -> set[str]:
    """Headers named in `Connection` are hop-by-hop too (RFC 9110 §7.6.1)."""
    return {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }


def request_headers(
    headers: Iterable[Header],
    *,
    request_id: str,
    client_host: str | None,
    scheme: str,
    host: str | None,
) -> list[Header]:
    """The headers to send upstream, with the gateway's request id and `X-Forwarded-*`."""
    incoming = list(headers)
    dropped = _connection_tokens(incoming)
    forwarded = [
        (name.lower(), value)
        for name, value in incoming
        if name.lower() in FORWARDED_REQUEST_HEADERS and name.lower() not in dropped
    ]
    if not any(name == "accept-encoding" for name, _ in forwarded):
        forwarded.append(("accept-encoding", "identity"))
    forwarded.append(("x-request-id", request_id))
    if client_host:
        forwarded.append(("x-forwarded-for", client_host))
    forwarded.append(("x-forwarded-proto", scheme))
    if host:
        forwarded.append(("x-forwarded-host", host))
    return forwarded


def response_headers(headers: Iterable[Header], *, upstream_base_url: str) -> list[Header]:
    """The upstream's headers minus hop-by-hop ones; a `Location` on the upstream's own
    address becomes a path, so internal addresses never reach clients."""
    incoming = list(headers)
    dropped = HOP_BY_HOP | OWN_RESPONSE_HEADERS | _connection_tokens(incoming)
    base = upstream_base_url.rstrip("/")
    kept: list[Header] = []
    for name, value in incoming:
        lowered = name.lower()
        if lowered in dropped:
            continue
        if lowered == "location" and value.startswith(base + "/"):
            value = value[len(base) :]
        kept.append((lowered, value))
    return kept


def has_body(headers: Iterable[Header]) -> bool:
    """A request carries a body when it says so; a GET without one is not sent chunked."""
    for name, value in headers:
        lowered = name.lower()
        if lowered == "transfer-encoding" or (lowered == "content-length" and value != "0"):
            return True
    return False
