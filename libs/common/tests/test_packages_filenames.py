"""Package file names split as Octopus splits them (octopus-domain.md §8.1)."""

from __future__ import annotations

import pytest

from cephalo_common.packages import (
    PackageFilename,
    format_package_filename,
    is_valid_package_id,
    parse_package_filename,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("MyApp.Web.1.2.3.zip", ("MyApp.Web", "1.2.3", ".zip")),
        ("Demo.1.0.0.zip", ("Demo", "1.0.0", ".zip")),
        ("Acme.Web.1.0.0.nupkg", ("Acme.Web", "1.0.0", ".nupkg")),
        ("Acme.Web.1.0.0.tar.gz", ("Acme.Web", "1.0.0", ".tar.gz")),
        ("Acme.Web.1.0.0.tgz", ("Acme.Web", "1.0.0", ".tgz")),
        ("Acme.Web.1.0.0.tar.bz2", ("Acme.Web", "1.0.0", ".tar.bz2")),
        ("Acme.Web.1.0.0.tar", ("Acme.Web", "1.0.0", ".tar")),
        ("acme-service.2.0.jar", ("acme-service", "2.0", ".jar")),
        ("acme_service.2.0.war", ("acme_service", "2.0", ".war")),
        ("Acme.1.2.3.4.zip", ("Acme", "1.2.3.4", ".zip")),
        ("Acme.7.zip", ("Acme", "7", ".zip")),
        ("Acme.1.0.0-beta.1.zip", ("Acme", "1.0.0-beta.1", ".zip")),
        ("Acme.1.0.0-beta-2.zip", ("Acme", "1.0.0-beta-2", ".zip")),
        ("Acme.1.0.0+build.42.zip", ("Acme", "1.0.0+build.42", ".zip")),
        ("Acme.1.0.0-rc.1+sha.5114f85.zip", ("Acme", "1.0.0-rc.1+sha.5114f85", ".zip")),
        ("Acme.2016.01.02.zip", ("Acme", "2016.01.02", ".zip")),
    ],
)
def test_package_file_names_split_into_id_version_and_extension(
    name: str, expected: tuple[str, str, str]
) -> None:
    assert parse_package_filename(name) == PackageFilename(*expected)


def test_the_id_stops_at_the_first_dot_digit_that_leaves_a_valid_version() -> None:
    assert parse_package_filename("App.2.Tools.1.0.zip").package_id == "App.2.Tools"
    assert parse_package_filename("App.1.2.3.4.5.zip") == PackageFilename(
        "App.1", "2.3.4.5", ".zip"
    )


def test_digits_in_ids_split_where_octopus_splits_them() -> None:
    assert parse_package_filename("1.0.0.zip") == PackageFilename("1", "0.0", ".zip")
    assert parse_package_filename("Acme.v1.0.0.zip") == PackageFilename("Acme.v1", "0.0", ".zip")


def test_extensions_match_whatever_their_case_and_come_back_lowercase() -> None:
    parsed = parse_package_filename("Acme.Web.1.0.0.TAR.GZ")
    assert (parsed.package_id, parsed.extension) == ("Acme.Web", ".tar.gz")
    assert parsed.filename == "Acme.Web.1.0.0.tar.gz"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Acme.Web.zip",
        "1.zip",
        ".1.0.0.zip",
        "Acme.Web.1.0.0",
        "Acme.Web.1.0.0.exe",
        "Acme.Web.1.0.0.gz",
        "Acme Web.1.0.0.zip",
        "../Acme.1.0.0.zip",
        "dir/Acme.1.0.0.zip",
        "C:\\Acme.1.0.0.zip",
        "Acme..Web.1.0.0.zip",
        "Acme.Web.1.0.0-.zip",
        "Acme.Web.1.0.0-beta..1.zip",
        "Acme.Web.1.0.0+.zip",
        "Acme.Web.vX.zip",
        "Acme.Web.1.0.0 .zip",
        "Äcme.1.0.0.zip",
        "A" * 250 + ".1.0.zip",
    ],
)
def test_invalid_package_file_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        parse_package_filename(name)


def test_formatting_is_the_inverse_of_parsing() -> None:
    name = format_package_filename("Acme.Web", "1.0.0-beta.1", ".TGZ")
    assert name == "Acme.Web.1.0.0-beta.1.tgz"
    assert parse_package_filename(name).version == "1.0.0-beta.1"


@pytest.mark.parametrize(
    ("package_id", "valid"),
    [
        ("Acme.Web", True),
        ("acme-web_2", True),
        ("Acme", True),
        ("", False),
        ("Acme..Web", False),
        (".Acme", False),
        ("Acme/Web", False),
        ("Acme Web", False),
        ("x" * 101, False),
    ],
)
def test_package_ids_are_segments_of_letters_digits_and_underscores(
    package_id: str, valid: bool
) -> None:
    assert is_valid_package_id(package_id) is valid
