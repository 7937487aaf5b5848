"""Pure rules behind triggers and package selection: cron fires, version sets, rule scope."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cephalo_release.domain.package_triggers import version_set
from cephalo_release.domain.package_versions import broken_rule, rules_for
from cephalo_release.domain.schedules import check_cron, next_fire


@pytest.mark.parametrize(
    ("cron", "zone", "after", "fires"),
    [
        (
            "0 30 9 * * *",
            "Europe/Paris",
            datetime(2026, 3, 28, 9, 0, tzinfo=UTC),
            datetime(2026, 3, 29, 7, 30, tzinfo=UTC),
        ),  # clocks go forward: 09:30 CEST
        (
            "0 30 9 * * *",
            "Europe/Paris",
            datetime(2026, 3, 27, 9, 0, tzinfo=UTC),
            datetime(2026, 3, 28, 8, 30, tzinfo=UTC),
        ),  # still CET
        (
            "*/15 * * * * *",
            "UTC",
            datetime(2026, 1, 1, 0, 0, 7, tzinfo=UTC),
            datetime(2026, 1, 1, 0, 0, 15, tzinfo=UTC),
        ),
        (
            "0 0 9 * * Mon-Fri",
            "America/New_York",
            datetime(2026, 11, 21, 12, tzinfo=UTC),
            datetime(2026, 11, 23, 14, 0, tzinfo=UTC),
        ),  # Saturday -> Monday 09:00 EST
        (
            "0 0 0 1 1 *",
            "Asia/Tokyo",
            datetime(2026, 12, 31, 15, 0, tzinfo=UTC),
            datetime(2027, 12, 31, 15, 0, tzinfo=UTC),
        ),  # strictly after
    ],
)
def test_next_fire_is_in_the_zone_and_strictly_after(
    cron: str, zone: str, after: datetime, fires: datetime
) -> None:
    assert next_fire(cron, zone, after) == fires


@pytest.mark.parametrize(
    "cron", ["0 9 * * *", "0 0 9 * * * 2026", "61 * * * * *", "0 0 0 31 2 *", "x x x x x x", ""]
)
def test_a_cron_must_have_six_fields_and_fire(cron: str) -> None:
    with pytest.raises(ValueError):
        check_cron(cron)


def test_a_version_set_ignores_order_case_and_spelling() -> None:
    one = [
        {"action_name": "Web", "package_reference": "", "version": "1.2"},
        {"action_name": "Web", "package_reference": "tools", "version": "3.0.0-Beta"},
    ]
    two = [
        {"action_name": "web", "package_reference": "Tools", "version": "3.0.0-beta"},
        {"action_name": "WEB", "package_reference": "", "version": "1.2.0.0"},
    ]
    assert version_set(one) == version_set(two)
    assert version_set(one) != version_set([{**one[0], "version": "1.2.1"}, one[1]])


def test_a_rule_applies_to_the_packages_it_names() -> None:
    everywhere = {"version_range": "[1.0,2.0)"}
    action = {"version_range": "(,1.5]", "action_packages": ["Web"]}
    primary = {"tag": "^$", "action_packages": ["Web:"]}
    tools = {"tag": "beta", "action_packages": ["web:TOOLS"]}
    rules = [everywhere, action, primary, tools]
    assert rules_for(rules, "Web", "") == [everywhere, action, primary]
    assert rules_for(rules, "Web", "tools") == [everywhere, action, tools]
    assert rules_for(rules, "Db", "") == [everywhere]
    assert broken_rule("1.4.0", rules_for(rules, "Web", "")) is None
    assert broken_rule("1.6.0", rules_for(rules, "Web", "")) is action
    # a NuGet range whose bounds are releases excludes pre-releases
    assert broken_rule("1.4.0-beta", rules_for(rules, "Web", "")) is everywhere
    assert broken_rule("1.4.0-beta", [primary]) is primary
    assert broken_rule("1.4.0", rules_for(rules, "Web", "tools")) is tools
