"""Version equality and order in each Octopus version format (octopus-domain.md §8.1)."""

from __future__ import annotations

import random

import pytest

from cephalo_common.packages import (
    compare_versions,
    is_prerelease,
    is_valid_version,
    normalize_version,
    parse_version,
    sort_versions,
    version_sort_key,
)

SEMVER_ORG_PRECEDENCE = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1.0.0.0", "1.0.0"),
        ("1.0", "1.0.0"),
        ("1", "1.0.0.0"),
        ("1.01", "1.1"),
        ("2016.01.02", "2016.1.2"),
        ("1.0.0-BETA", "1.0.0-beta"),
        ("1.0.0-Beta.1", "1.0.0-beta.01"),
        ("1.0.0+Build.5", "1.0.0+build.5"),
    ],
)
def test_semantically_equal_versions_compare_equal(a: str, b: str) -> None:
    assert compare_versions(a, b) == 0
    assert compare_versions(b, a) == 0
    assert parse_version(a) == parse_version(b)
    assert hash(parse_version(a)) == hash(parse_version(b))


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("3.0.0-beta.9", "3.0.0-beta.10"),
        ("1.0.0-beta", "1.0.0"),
        ("1.0.0", "1.0.0.1"),
        ("1.0.0.9", "1.0.1"),
        ("1.9.0", "1.10.0"),
        ("1.0.0-beta.2", "1.0.0-BETA.11"),
        ("1.0.0-9", "1.0.0-alpha"),
        ("1.0.0-alpha", "1.0.0-alpha.1"),
        ("1.0.0-rc.1+build.1", "1.0.0-rc.1+build.2"),
        ("1.0.0", "1.0.0+anything"),
        ("0.9.9.9", "1"),
    ],
)
def test_semver_versions_order_as_octopus_orders_them(older: str, newer: str) -> None:
    assert compare_versions(older, newer) == -1
    assert compare_versions(newer, older) == 1


def test_the_semver_org_precedence_example_sorts_in_order_from_any_shuffle() -> None:
    shuffled = SEMVER_ORG_PRECEDENCE[:]
    random.Random(7).shuffle(shuffled)
    assert sort_versions(shuffled, newest_first=False) == SEMVER_ORG_PRECEDENCE
    assert sort_versions(shuffled) == SEMVER_ORG_PRECEDENCE[::-1]
    assert sorted(shuffled, key=version_sort_key) == SEMVER_ORG_PRECEDENCE


def test_sorting_keeps_spellings_and_drops_invalid_versions() -> None:
    assert sort_versions(["1.0.0.0", "not-a-version", "2.0", "1.5.0-beta"]) == [
        "2.0",
        "1.5.0-beta",
        "1.0.0.0",
    ]


@pytest.mark.parametrize(
    "version",
    [
        "",
        " ",
        "v1.0.0",
        "1.0.0.0.0",
        "1..0",
        "1.0.0-",
        "1.0.0-beta..1",
        "1.0.0-beta_1",
        "1.0.0+",
        "1.0.0+meta..data",
        "-1.0.0",
        "1.a.0",
        "99999999999.0.0",
        "1.0.0-bêta",
    ],
)
def test_invalid_semver_versions_are_refused(version: str) -> None:
    assert not is_valid_version(version)
    with pytest.raises(ValueError):
        compare_versions(version, "1.0.0")


@pytest.mark.parametrize(
    ("version", "normal"),
    [
        ("1.0.0.0", "1.0.0"),
        ("1.0", "1.0.0"),
        ("01.002.3", "1.2.3"),
        ("1.2.3.4", "1.2.3.4"),
        ("1.0.0-Beta.1", "1.0.0-beta.1"),
        ("1.0.0-rc.1+build.7", "1.0.0-rc.1"),
    ],
)
def test_normalized_versions_give_one_spelling_per_semver_version(
    version: str, normal: str
) -> None:
    assert normalize_version(version) == normal


def test_prerelease_means_a_label_not_metadata() -> None:
    assert is_prerelease("1.0.0-beta")
    assert not is_prerelease("1.0.0+build.5")


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1.0.0-alpha", "1.0.0-beta"),
        ("1-alpha", "1-beta"),
        ("1-beta", "1-milestone"),
        ("1-milestone", "1-rc"),
        ("1-rc", "1-snapshot"),
        ("1-snapshot", "1"),
        ("1", "1-sp"),
        ("1-sp", "1-whatever"),
        ("1.0-SNAPSHOT", "1.0"),
        ("1-1", "1.0.1"),
        ("1.0-alpha-1", "1.0-alpha-2"),
        ("1.0.9", "1.0.10"),
        ("2.0-a1", "2.0-b1"),
    ],
)
def test_maven_versions_follow_comparable_version(older: str, newer: str) -> None:
    assert compare_versions(older, newer, "maven") == -1
    assert compare_versions(newer, older, "maven") == 1


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1.0.0", "1"),
        ("1-ga", "1"),
        ("1-final", "1.0"),
        ("1.0-cr1", "1.0-rc1"),
        ("1.0-a1", "1.0-ALPHA-1"),
    ],
)
def test_maven_equalities(a: str, b: str) -> None:
    assert compare_versions(a, b, "maven") == 0


def test_octopus_versions_are_permissive_and_ignore_metadata() -> None:
    assert compare_versions("v1.2.3", "1.2.3", "octopus") == 0
    assert compare_versions("1.2.3+a", "1.2.3+b", "octopus") == 0
    assert compare_versions("1.2.3-beta_10", "1.2.3-beta.9", "octopus") == 1
    assert compare_versions("1.2.3-beta", "1.2.3", "octopus") == -1
    assert is_valid_version("branch-name.17", "octopus")


def test_docker_latest_is_newer_than_any_other_tag() -> None:
    assert compare_versions("latest", "99.0.0", "docker") == 1
    assert compare_versions("1.0-alpine", "1.0", "docker") == -1
    assert not is_prerelease("latest", "docker")
    assert sort_versions(["1.0", "latest", "2.0"], "docker") == ["latest", "2.0", "1.0"]


def test_lexicographic_versions_compare_label_by_label() -> None:
    assert compare_versions("release.10", "release.9", "lexicographic") == 1
    assert compare_versions("ABC", "abc", "lexicographic") == 0
    assert compare_versions("a.b", "a.c", "lexicographic") == -1


def test_an_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown version format"):
        compare_versions("1.0", "2.0", "calver")


def test_formats_are_named_case_insensitively() -> None:
    assert compare_versions("1.0", "2.0", "SemVer") == -1
