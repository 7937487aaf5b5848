"""Typed dependencies for routes: one unit of work per request, the feed's runtime."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from cephalo_common.http.app import RuntimeDep, SessionDep
from cephalo_feed.db.repositories import Repositories
from cephalo_feed.runtime import FEED_EXTRA, Feed


def _repositories(session: SessionDep) -> Repositories:
    return Repositories(session)


def _feed(runtime: RuntimeDep) -> Feed:
    feed: Feed = runtime.extras[FEED_EXTRA]
    return feed


ReposDep = Annotated[Repositories, Depends(_repositories)]
FeedDep = Annotated[Feed, Depends(_feed)]
