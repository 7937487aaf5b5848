"""API conventions every list and versioned resource follows (see docs/api.md).

Lists page with `skip`/`take` (clamped, never rejected for being out of range), filter
with `partial_name`, and answer `{items, total, skip, take, links}`. Versioned resources
carry `version` and an `ETag`; a write says which version it read in the body or `If-Match`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Query, Request, Response

from cephalo_common.errors import Invalid
from cephalo_release.db.repositories import Page as RowPage
from cephalo_release.schemas.common import Page, PageLinks

DEFAULT_TAKE = 30
MAX_TAKE = 100
MAX_SKIP = 2_147_483_647
T = TypeVar("T")
ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,10})"?\s*$')


@dataclass(frozen=True)
class Paging:
    skip: int
    take: int
    partial_name: str | None


async def _paging(
    skip: Annotated[int, Query(description="Items to skip; clamped to 0…2^31-1.")] = 0,
    take: Annotated[int, Query(description=f"Page size; clamped to 1…{MAX_TAKE}.")] = DEFAULT_TAKE,
    partial_name: Annotated[
        str | None, Query(max_length=200, description="Case-insensitive part of the name.")
    ] = None,
) -> Paging:
    return Paging(
        skip=min(max(skip, 0), MAX_SKIP),
        take=min(max(take, 1), MAX_TAKE),
        partial_name=partial_name or None,
    )


PagingDep = Annotated[Paging, Depends(_paging)]


def page(request: Request, rows: RowPage[Any], render: Callable[[Any], T]) -> Page[T]:
    """The list envelope, with links (relative: they hold behind the gateway) to this page
    and its neighbours."""

    def at(skip: int) -> str:
        url = request.url.include_query_params(skip=skip, take=rows.take)
        return f"{url.path}?{url.query}"

    has_next = rows.skip + rows.take < rows.total
    return Page[T](
        items=[render(row) for row in rows.items],
        total=rows.total,
        skip=rows.skip,
        take=rows.take,
        links=PageLinks(
            self=at(rows.skip),
            next=at(rows.skip + rows.take) if has_next else None,
            prev=at(max(rows.skip - rows.take, 0)) if rows.skip > 0 else None,
        ),
    )


async def _if_match(
    if_match: Annotated[
        str | None,
        Header(max_length=100, description='The ETag you read, e.g. "3".'),
    ] = None,
) -> int | None:
    if if_match is None:
        return None
    match = ETAG.match(if_match)
    if match is None:
        raise Invalid(f"If-Match {if_match!r} is not an ETag this service issued")
    return int(match.group(1))


IfMatchDep = Annotated[int | None, Depends(_if_match)]


def expected_version(body_version: int | None, if_match: int | None) -> int | None:
    """The version the writer read, from the body or `If-Match` (which must agree)."""
    if body_version is not None and if_match is not None and body_version != if_match:
        raise Invalid("the body's version and If-Match disagree")
    return body_version if body_version is not None else if_match


def etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def ids(values: Iterable[Any]) -> list[str]:
    return [str(value) for value in values]
