"""Rules every resource shares: references (id, slug or name), slugs, optimistic concurrency."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from cephalo_common.errors import CephaloError, Conflict

T = TypeVar("T")


class PreconditionRequired(CephaloError):
    """A write of a versioned resource that does not say which version it read."""

    status_code = 428
    title = "Precondition required"
    type_slug = "precondition-required"


def slugify(name: str, fallback: str = "item") -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:180].strip("-")
    return slug or fallback


def unique_slug(name: str, taken: set[str], fallback: str = "item") -> str:
    """The slug of `name`, with `-2`, `-3`… appended until it is free."""
    base = slug = slugify(name, fallback)
    counter = 2
    while slug in taken:
        slug, counter = f"{base}-{counter}", counter + 1
    return slug


def as_uuid(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


async def resolve(
    ref: str,
    by_id: Callable[[uuid.UUID], Awaitable[T | None]],
    by_slug: Callable[[str], Awaitable[T | None]],
    by_name: Callable[[str], Awaitable[T | None]],
) -> T | None:
    """An id first, then a slug, then a name (names are what people and agents type)."""
    as_id = as_uuid(ref)
    if as_id is not None:
        found = await by_id(as_id)
        if found is not None:
            return found
    return await by_slug(ref) or await by_name(ref)


def check_version(expected: int | None, current: int, noun: str, *, required: bool = True) -> None:
    """Optimistic concurrency: the writer says which version it read; a stale one is a 409."""
    if expected is None:
        if required:
            raise PreconditionRequired(
                f"say which version of the {noun} you read (`version` in the body or "
                "`If-Match`), so a change made meanwhile is not overwritten"
            )
        return
    if expected != current:
        raise Conflict(
            f"the {noun} changed since version {expected} (now {current}); "
            "reload and apply your change again"
        )
