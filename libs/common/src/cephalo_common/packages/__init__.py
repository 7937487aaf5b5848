"""Package identity and version rules, shared by package-feed, release-service, the CLI and
the agent. Pure functions: no I/O, no settings, no state.

File names (`filenames`):
    parse_package_filename(name) -> PackageFilename(package_id, version, extension)
        `MyApp.Web.1.2.3.zip` → (`MyApp.Web`, `1.2.3`, `.zip`); ValueError when invalid.
        Extensions: .zip .nupkg .jar .war .ear .rar .tar .tar.gz .tgz .tar.bz2 .tar.bz .tbz2 .tbz
    format_package_filename(package_id, version, extension) -> str
    is_valid_package_id(package_id) -> bool

Versions (`versions`), in a `VersionFormat`: "semver" (default; what the built-in feed
stores), "octopus", "maven", "docker", "lexicographic":
    compare_versions(a: str, b: str, format: str = "semver") -> int   # -1, 0, 1
        Semantic equality: `1.0.0.0 == 1.0.0`, `1.01 == 1.1`; order: `1.0.0-beta.10 >
        1.0.0-beta.9`, `1.0.0-beta < 1.0.0`, labels case-insensitive. ValueError if invalid.
    parse_version(text, format) -> Version   (ordered, hashable; `.is_prerelease`)
    normalize_version(text, format) -> str   one spelling per version (identity key)
    sort_versions(versions, format, newest_first=True) -> list[str]
    version_sort_key(text, format) -> key for sorted()
    is_valid_version(text, format) -> bool; is_prerelease(text, format) -> bool

Channel version rules (`ranges`), what release-service's channels call:
    version_in_range(version: str, range: str, format: str = "semver") -> bool
        NuGet ranges (`[1.0,2.0)`, `1.0`, `(,1.0]`, `[1.0]`, `*`) for every format but
        Maven, which takes Maven ranges (`[1.0,2.0)`, `(,1.0],[1.2,)`). An empty range admits
        everything; a NuGet range admits pre-releases only when a bound is one.
        ValueError when the version or the range is invalid.
    prerelease_tag_matches(version: str, tag: str, format: str = "semver") -> bool
        The channel's tag regex, searched in `<pre-release>[+<metadata>]` (`^$`: releases
        only; `^[^+]`: pre-releases only). Empty tag: True; invalid regex: False.
    matches_channel_rule(version, *, version_range="", tag="", format="semver") -> bool
        Both checks; an invalid version is simply not a match.
    parse_version_range(text, format) -> VersionRange; is_valid_version_range(text, format)

Archive entries (`archive_rules`, stdlib only, bundled into the step runner; import it by
its module path): unsafe_name(name), unsafe_zip_entry(info), unsafe_tar_member(member)
-> the reason an entry is refused, or None. package-feed applies them on push, the step
runner again before it extracts.
"""

from cephalo_common.packages.filenames import (
    ARCHIVE_EXTENSIONS,
    TAR_EXTENSIONS,
    ZIP_EXTENSIONS,
    PackageFilename,
    format_package_filename,
    is_valid_package_id,
    parse_package_filename,
)
from cephalo_common.packages.ranges import (
    VersionRange,
    is_valid_version_range,
    matches_channel_rule,
    parse_version_range,
    prerelease_tag_matches,
    version_in_range,
)
from cephalo_common.packages.versions import (
    Version,
    VersionFormat,
    compare_versions,
    is_prerelease,
    is_valid_version,
    normalize_version,
    parse_version,
    sort_versions,
    version_sort_key,
)

__all__ = [
    "ARCHIVE_EXTENSIONS",
    "TAR_EXTENSIONS",
    "ZIP_EXTENSIONS",
    "PackageFilename",
    "Version",
    "VersionFormat",
    "VersionRange",
    "compare_versions",
    "format_package_filename",
    "is_prerelease",
    "is_valid_package_id",
    "is_valid_version",
    "is_valid_version_range",
    "matches_channel_rule",
    "normalize_version",
    "parse_package_filename",
    "parse_version",
    "parse_version_range",
    "prerelease_tag_matches",
    "sort_versions",
    "version_in_range",
    "version_sort_key",
]
