"""Session fixtures end after the last test that uses them, not when the session ends.

A suite's session fixtures (a conftest's in-process services, a whole stack) keep their
background loops, NATS consumers and processes running while every later suite runs: on a
2-core machine that idle work slows the rest of the run. This plugin finishes each session
fixture defined below the root (in a conftest or test module, or the shared whole stack) right
after the teardown of the last test in the run's order that uses it. A fixture still wanted
later would be set up again, so this never changes a result, only when resources are freed.

Off under pytest-xdist workers (each runs only part of the order it collected).
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from _pytest.fixtures import FixtureDef

SHARED_STACK = (
    "whole_stack"  # cephalo_dev.shared_stack.FIXTURE, not imported: it pulls in the stack
)

LAST_USERS = pytest.StashKey[dict[str, list[FixtureDef[object]]]]()


def _ends_early(definition: FixtureDef[object]) -> bool:
    return definition.scope == "session" and (
        bool(definition.baseid) or definition.argname == SHARED_STACK
    )


def _session_fixtures(item: pytest.Item) -> list[FixtureDef[object]]:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    found = []
    for name in getattr(item, "fixturenames", ()):
        definitions = info.name2fixturedefs.get(name)
        if definitions and _ends_early(definitions[-1]):
            found.append(definitions[-1])
    return found


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return
    last: dict[FixtureDef[object], str] = {}
    for item in session.items:
        for definition in _session_fixtures(item):
            last[definition] = item.nodeid
    by_item: dict[str, list[FixtureDef[object]]] = defaultdict(list)
    for definition, nodeid in last.items():
        by_item[nodeid].append(definition)
    session.config.stash[LAST_USERS] = dict(by_item)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if nextitem is None:
        return
    ending = item.config.stash.get(LAST_USERS, {}).pop(item.nodeid, [])
    request = getattr(item, "_request", None)
    for definition in reversed(ending):
        if definition.cached_result is not None and request is not None:
            definition.finish(request)
