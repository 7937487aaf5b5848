"""A unit of work opened by domain code itself, for work that must commit on its own."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from cephalo_feed.db.repositories import Repositories

UnitOfWork = Callable[[], AbstractAsyncContextManager[Repositories]]
