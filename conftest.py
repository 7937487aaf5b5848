"""The order of the test run, and how `make test` shares it between pytest-xdist workers
(`--dist loadgroup`).

The suites that share the session's whole stack (`cephalo_dev.shared_stack`) run last and
together, so the stack starts once and never idles while other suites run; under xdist they
are one group (one worker, one stack).

Every test gets an `xdist_group`: the directory of the conftest whose session-scoped fixture it
uses (so a whole stack, such as the CLI's or the gateway's, starts once, on one worker), else its
own file (so module fixtures start once). Under xdist the groups are queued heaviest first: those
holding whole-stack tests (markers e2e, faults, scaleout, browser, fuzz) lead, so that no long
test starts last while the other worker idles. A serial run keeps the collected order (but for the shared stack's suites).
"""

from __future__ import annotations

import pytest

from cephalo_dev.shared_stack import shared_last, uses_shared_stack

SHARED_STACK_GROUP = "whole-stack"
HEAVY_MARKERS = ("scaleout", "faults", "browser", "e2e", "fuzz")


def _session_conftest_dir(item: pytest.Item) -> str | None:
    """The node id of the directory whose conftest defines a session fixture this test uses
    (plugin and built-in fixtures have an empty base id and do not count)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    bases = {
        definitions[-1].baseid
        for name in item.fixturenames
        if (definitions := info.name2fixturedefs.get(name))
        and definitions[-1].scope == "session"
        and definitions[-1].baseid
    }
    return min(bases, key=len) if bases else None


def _group_of(item: pytest.Item) -> str:
    own = item.get_closest_marker("xdist_group")
    if own is not None:
        return str(own.args[0] if own.args else own.kwargs.get("name", "default"))
    if uses_shared_stack(item):
        return SHARED_STACK_GROUP
    return _session_conftest_dir(item) or item.nodeid.split("::", 1)[0]


def _weight(items: list[pytest.Item]) -> tuple[int, int]:
    """Heavy tests first (by how many), then by number of tests: a rough longest-first order."""
    heavy = sum(1 for item in items if any(item.get_closest_marker(m) for m in HEAVY_MARKERS))
    return (-heavy, -len(items))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Runs in each xdist worker, where xdist has reset `dist` to "no" and set `loadgroup`."""
    shared_last(items)
    groups: dict[str, list[pytest.Item]] = {}
    for item in items:
        group = _group_of(item)
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))
        groups.setdefault(group, []).append(item)
    if not getattr(config.option, "loadgroup", False):
        return
    ordered = sorted(groups.values(), key=_weight)
    items[:] = [item for group in ordered for item in group]
