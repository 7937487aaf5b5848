"""Channel version rules: NuGet/Maven ranges and the pre-release tag regex (domain §3)."""

from __future__ import annotations

import pytest

from cephalo_common.packages import (
    is_valid_version_range,
    matches_channel_rule,
    prerelease_tag_matches,
    version_in_range,
)


@pytest.mark.parametrize(
    ("version", "version_range", "inside"),
    [
        ("1.0.0", "1.0", True),
        ("0.9.0", "1.0", False),
        ("5.0.0", "1.0", True),
        ("1.0.0", "[1.0]", True),
        ("1.0.0.0", "[1.0]", True),
        ("1.0.1", "[1.0]", False),
        ("1.0.0", "(1.0,)", False),
        ("1.0.1", "(1.0,)", True),
        ("1.0.0", "(,1.0]", True),
        ("1.0.0", "(,1.0)", False),
        ("1.0.0", "[1.0,2.0)", True),
        ("1.9.9", "[1.0,2.0)", True),
        ("2.0.0", "[1.0,2.0)", False),
        ("2.0.0", "[1.0,2.0]", True),
        ("1.5.0", "(1.0, 2.0)", True),
        ("2.0.0+build.1", "[1.0,2.0]", True),
        ("3.0.0", "*", True),
        ("1.2.0", "1.*", True),
        ("0.9.0", "1.*", False),
        ("", "", False),
    ],
)
def test_nuget_ranges(version: str, version_range: str, inside: bool) -> None:
    if not version:
        with pytest.raises(ValueError):
            version_in_range(version, version_range)
        return
    assert version_in_range(version, version_range) is inside


def test_a_nuget_range_admits_prereleases_only_when_a_bound_is_one() -> None:
    assert not version_in_range("1.5.0-beta", "[1.0,2.0)")
    assert not version_in_range("3.0.0-beta", "*")
    documented = "[2.0.0-alpha.1,2.0.0)"
    assert version_in_range("2.0.0-alpha.1", documented)
    assert version_in_range("2.0.0-beta.3", documented)
    assert not version_in_range("2.0.0-alpha", documented)
    assert not version_in_range("2.0.0", documented)
    assert version_in_range("1.0.1-rc.1", "1.0.0-*")


def test_an_empty_range_admits_everything() -> None:
    assert version_in_range("1.0.0-beta", "")
    assert version_in_range("1.0.0", "   ")


@pytest.mark.parametrize(
    "version_range", ["1", "[1.0", "1.0]", "[1.0,2.0,3.0]", "[,]", "(x,2.0)", "[1.0,2.*]", "1.*.0"]
)
def test_invalid_nuget_ranges_are_errors(version_range: str) -> None:
    assert not is_valid_version_range(version_range)
    with pytest.raises(ValueError):
        version_in_range("1.0.0", version_range)


@pytest.mark.parametrize(
    ("version", "version_range", "inside"),
    [
        ("1.0", "[1.0,2.0)", True),
        ("2.0-SNAPSHOT", "[1.0,2.0)", True),
        ("2.0", "[1.0,2.0)", False),
        ("1.5", "[1.5,)", True),
        ("1.0", "(,1.0],[1.2,)", True),
        ("1.1", "(,1.0],[1.2,)", False),
        ("1.3", "(,1.0],[1.2,)", True),
        ("1.0", "[1.0]", True),
        ("1.0.0", "[1.0]", True),
        ("0.1", "1.0", True),
    ],
)
def test_maven_ranges(version: str, version_range: str, inside: bool) -> None:
    assert version_in_range(version, version_range, "maven") is inside


@pytest.mark.parametrize(
    "version_range",
    ["[1.0,2.0", "(1.0)", "[2.0,1.0]", "[1.0,1.0]", "[1.0,2.0],1.5", "[1.0,3.0],[2.0,4.0]"],
)
def test_invalid_maven_ranges_are_errors(version_range: str) -> None:
    assert not is_valid_version_range(version_range, "maven")


@pytest.mark.parametrize(
    ("version", "tag", "matches"),
    [
        ("1.0.0", "^$", True),
        ("1.0.0-beta", "^$", False),
        ("1.0.0+build.5", "^$", False),
        ("1.0.0-beta", r"^[^\+].*", True),
        ("1.0.0", r"^[^\+].*", False),
        ("1.0.0+build.5", r"^[^\+].*", False),
        ("1.0.0", r"^(|\+.*)$", True),
        ("1.0.0+build.5", r"^(|\+.*)$", True),
        ("1.0.0-beta+build.5", r"^(|\+.*)$", False),
        ("1.0.0-beta0003", "^beta", True),
        ("1.0.0-mybeta", "^beta", False),
        ("1.0.0-mybeta", "beta", True),
        ("1.0.0-alpha+beta", "^beta", False),
        ("1.0.0-bugfix-syscrash", "^bugfix-", True),
        ("1.0.0-feature-x", "^(?!beta).+", True),
        ("1.0.0-beta.1", "^(?!beta).+", False),
        ("1.0.0-Beta", "^beta", False),
        ("1.0.0-beta", "", True),
        ("1.0.0-beta", "([", False),
    ],
)
def test_prerelease_tag_rules_from_the_octopus_channel_docs(
    version: str, tag: str, matches: bool
) -> None:
    assert prerelease_tag_matches(version, tag) is matches


def test_maven_tag_rules_match_the_qualifier_ignoring_case() -> None:
    assert prerelease_tag_matches("1.0-SNAPSHOT", "^snapshot$", "maven")
    assert prerelease_tag_matches("1.0", "^$", "maven")
    assert not prerelease_tag_matches("1.0-RC1", "^$", "maven")


def test_a_channel_rule_needs_both_the_range_and_the_tag() -> None:
    rule = {"version_range": "[2.0.0-alpha.1,3.0.0)", "tag": "^beta"}
    assert matches_channel_rule("2.1.0-beta.2", **rule)
    assert not matches_channel_rule("2.1.0-alpha.2", **rule)
    assert matches_channel_rule("3.0.0-beta", **rule)
    assert not matches_channel_rule("3.0.1-beta", **rule)
    assert not matches_channel_rule("not a version", **rule)
