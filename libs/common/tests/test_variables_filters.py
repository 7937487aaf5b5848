"""Golden tests for every filter, ported from Octostache's FiltersFixture and VersionFixture.

Culture-dependent .NET results are pinned to the invariant culture (see the README).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cephalo_common.variables import FILTERS, FilterContext, VariableDictionary, evaluate, validate

QUICK = "The quick brown fox jumps over the lazy dog"
MULTILINE = "Octopus Deploy\nOctopus Deploy\nOctopus Deploy"


def _rows(*rows: tuple[str, str, str | None, str | None]) -> list[object]:
    """(id, filter expression applied to `foo`, value of foo, expected)."""
    return [
        pytest.param(expression, value, expected, id=name)
        for name, expression, value, expected in rows
    ]


TEXT = _rows(
    ("ToUpper", "ToUpper", "Abc", "ABC"),
    ("ToLower", "ToLower", "AbC", "abc"),
    ("ToUpper with an option is echoed", "ToUpper x", "Abc", '#{foo | ToUpper "x"}'),
    ("ToBase64", "tobase64", "Foo Bar", "Rm9vIEJhcg=="),
    ("FromBase64 invalid is echoed", "FromBase64", "not base64!", "#{foo | FromBase64}"),
    ("Replace literal", "Replace abc def", "abc", "def"),
    ("Replace with empty", "Replace a", "abc", "bc"),
    ("Replace without options", "Replace", "abc", "#{foo | Replace}"),
    ("Replace is case-sensitive", "Replace abc def", "ABC", "ABC"),
    ("Replace with spaces", 'Replace "ab c" "d ef"', "ab c", "d ef"),
    ("Replace single quotes", 'Replace "a\'b" "d\'e"', "a'b", "d'e"),
    ("Replace range", 'Replace "[a-z]+" 1', "a'b", "1'1"),
    ("Replace escaped special", 'Replace "a\\(b" "d(e"', "a(b", "d(e"),
    ("Replace substitutes groups", 'Replace "o(.+)o([a-z]*)s" "o$2o$1s"', "opuocts", "octopus"),
    ("Replace all occurrences", 'Replace "a" x', "ababa", "xbxbx"),
    ("Replace at start", 'Replace "^a" x', "ababa", "xbaba"),
    ("Replace at end", 'Replace "a$" x', "ababa", "ababx"),
    ("Replace named group", 'Replace "(?<w>b)" "[${w}]"', "abc", "a[b]c"),
    (
        "Replace bad pattern",
        'Replace "(" x',
        "abc",
        "[Replace error: missing ), unterminated subpattern at position 0]",
    ),
    (
        "Replace refuses catastrophic backtracking",
        'Replace "(a+)+b" x',
        "aaa",
        "[Replace error: nested unbounded repetition (such as (a+)+ or (.*,)*) can backtrack catastrophically]",
    ),
    ("Substring without options", "Substring", "ababa", "#{foo | Substring}"),
    ("Substring too many options", "Substring 1 2 3", "ababa", '#{foo | Substring "1" "2" "3"}'),
    ("Substring length", "Substring 7", "Octopus Deploy", "Octopus"),
    ("Substring start and length", "Substring 8 6", "Octopus Deploy", "Deploy"),
    ("Substring non-numeric", "Substring a", "Octopus Deploy", '#{foo | Substring "a"}'),
    (
        "Substring non-numeric length",
        "Substring 0 a",
        "Octopus Deploy",
        '#{foo | Substring "0" "a"}',
    ),
    ("Substring out of range", "Substring 20", "Octopus Deploy", '#{foo | Substring "20"}'),
    (
        "Substring start and length out of range",
        "Substring 8 7",
        "Octopus Deploy",
        '#{foo | Substring "8" "7"}',
    ),
    ("Substring negative", "Substring -1", "Octopus Deploy", '#{foo | Substring "-1"}'),
    (
        "Substring negative length",
        "Substring 0 -1",
        "Octopus Deploy",
        '#{foo | Substring "0" "-1"}',
    ),
    ("Truncate without options", "Truncate", "Octopus Deploy", "#{foo | Truncate}"),
    ("Truncate longer than value", "Truncate 50", "Octopus Deploy", "Octopus Deploy"),
    ("Truncate non-numeric", "Truncate a", "Octopus Deploy", '#{foo | Truncate "a"}'),
    ("Truncate negative", "Truncate -1", "Octopus Deploy", '#{foo | Truncate "-1"}'),
    ("Truncate", "Truncate 7", "Octopus Deploy", "Octopus..."),
    ("Trim", "Trim", " Octopus Deploy ", "Octopus Deploy"),
    ("Trim start", "Trim start", " Octopus Deploy ", "Octopus Deploy "),
    ("Trim End", "Trim End", " Octopus Deploy ", " Octopus Deploy"),
    ("Substring then Trim", "Substring 8 | Trim", "Octopus Deploy", "Octopus"),
    ("Trim invalid option", "Trim Both", "Octopus Deploy", '#{foo | Trim "Both"}'),
    ("Append", "Append value", "bar", "barvalue"),
    ("Append several", "Append value1 value2", "bar", "barvalue1value2"),
    ("Append quoted space", 'Append value1 " " value2', "bar", "barvalue1 value2"),
    ("Append with a token", '" " #{foo} " " value', "bar", None),
    ("Append requires an option", "Append", "bar", "#{foo | Append}"),
    ("Prepend", "Prepend value", "bar", "valuebar"),
    ("Prepend several", 'Prepend value1 " " value2', "bar", "value1 value2bar"),
    ("Prepend requires an option", "Prepend", "bar", "#{foo | Prepend}"),
    ("Null", "Null", "bar", None),
)

INDENT = _rows(
    ("empty", "Indent", "", ""),
    ("default four spaces", "Indent", "Octopus Deploy", "    Octopus Deploy"),
    (
        "every line",
        "Indent",
        MULTILINE,
        "    Octopus Deploy\n    Octopus Deploy\n    Octopus Deploy",
    ),
    ("custom size", "Indent 2", MULTILINE, "  Octopus Deploy\n  Octopus Deploy\n  Octopus Deploy"),
    (
        "subsequent lines only",
        "Indent /3",
        MULTILINE,
        "Octopus Deploy\n   Octopus Deploy\n   Octopus Deploy",
    ),
    (
        "different subsequent size",
        "Indent 3/2",
        MULTILINE,
        "   Octopus Deploy\n  Octopus Deploy\n  Octopus Deploy",
    ),
    ("custom text", "Indent //", MULTILINE, "//Octopus Deploy\n//Octopus Deploy\n//Octopus Deploy"),
    (
        "different texts",
        'Indent "/* " " * "',
        MULTILINE,
        "/* Octopus Deploy\n * Octopus Deploy\n * Octopus Deploy",
    ),
    ("maximum 255", "Indent 255", MULTILINE, "\n".join([" " * 255 + "Octopus Deploy"] * 3)),
    ("256 is text", "Indent 256", MULTILINE, "\n".join(["256Octopus Deploy"] * 3)),
    ("subsequent 256 is text", "Indent /256", MULTILINE, "\n".join(["/256Octopus Deploy"] * 3)),
    ("initial 256 is text", "Indent 256/3", MULTILINE, "\n".join(["256/3Octopus Deploy"] * 3)),
    ("initial 255", "Indent 255/3", MULTILINE, " " * 252 + "\n".join(["   Octopus Deploy"] * 3)),
    ("hash via escaped quotes", 'Indent \\"# \\"', MULTILINE, "\n".join(["# Octopus Deploy"] * 3)),
    ("too many options", "Indent abc 123 def", "foo", '#{foo | Indent "abc" "123" "def"}'),
)

ESCAPING = _rows(
    ("HtmlEscape", "HtmlEscape", "A&'bc", "A&amp;&apos;bc"),
    ("HtmlEscape empty", "HtmlEscape", "", ""),
    (
        "HtmlEscape slash and tags",
        "HtmlEscape",
        '<a href="/x">',
        "&lt;a href=&quot;&#x2F;x&quot;&gt;",
    ),
    ("XmlEscape", "XmlEscape", "A&'bc", "A&amp;&apos;bc"),
    ("JsonEscape quotes", "JsonEscape", 'Test"Test', 'Test\\"Test'),
    ("JsonEscape CR", "JsonEscape", "Test\rTest", "Test\\rTest"),
    ("JsonEscape LF", "JsonEscape", "Test\nTest", "Test\\nTest"),
    ("JsonEscape tab", "JsonEscape", "Test\tTest", "Test\\tTest"),
    ("JsonEscape backslash", "JsonEscape", "Test\\Test", "Test\\\\Test"),
    ("UriDataEscape", "UriDataEscape", "A b:c+d/e", "A%20b%3Ac%2Bd%2Fe"),
    ("UriEscape", "UriEscape", "A b:c+d/e", "A%20b:c+d/e"),
    ("YamlSingleQuote quote", "YamlSingleQuoteEscape", "single'quote", "single''quote"),
    ("YamlSingleQuote backslash", "YamlSingleQuoteEscape", "\\'", "\\''"),
    (
        "YamlSingleQuote newlines",
        "YamlSingleQuoteEscape",
        "a\n\tb\n\tc\n\td",
        "a\n\n\tb\n\n\tc\n\n\td",
    ),
    ("YamlSingleQuote CRLF", "YamlSingleQuoteEscape", "a\r\nb", "a\r\n\r\nb"),
    ("YamlSingleQuote mixed", "YamlSingleQuoteEscape", "a\n\r\nb", "a\n\n\r\nb"),
    ("YamlDoubleQuote quote", "YamlDoubleQuoteEscape", 'double"quote', 'double\\"quote'),
    ("YamlDoubleQuote backslash", "YamlDoubleQuoteEscape", "\\", "\\\\"),
    ("YamlDoubleQuote CRLF", "YamlDoubleQuoteEscape", "\r\n", "\\r\\n"),
    ("YamlDoubleQuote tabs", "YamlDoubleQuoteEscape", "a\n\tb", "a\\n\\tb"),
    ("YamlDoubleQuote single quote", "YamlDoubleQuoteEscape", "single'quote", "single'quote"),
    (
        "YamlDoubleQuote unicode",
        "YamlDoubleQuoteEscape",
        "我叫章鱼",
        "\\u6211\\u53eb\\u7ae0\\u9c7c",
    ),
    ("PropertiesKey space", "PropertiesKeyEscape", " ", "\\ "),
    ("PropertiesKey colon", "PropertiesKeyEscape", ":", "\\:"),
    ("PropertiesKey equals", "PropertiesKeyEscape", "=", "\\="),
    ("PropertiesKey mixed", "PropertiesKeyEscape", " a \n b ", "\\ a\\ \\n\\ b\\ "),
    ("PropertiesKey unicode", "PropertiesKeyEscape", "我叫章鱼", "\\u6211\\u53eb\\u7ae0\\u9c7c"),
    ("PropertiesKey latin-1 kept", "PropertiesKeyEscape", "÷ü", "÷ü"),
    ("PropertiesValue colon", "PropertiesValueEscape", ":", ":"),
    ("PropertiesValue leading space", "PropertiesValueEscape", " ", "\\ "),
    ("PropertiesValue trailing space", "PropertiesValueEscape", "a ", "a "),
    ("PropertiesValue mixed", "PropertiesValueEscape", " a \n b ", "\\ a \\n b "),
    ("Markdown emphasis", "Markdown", "_yeah!_", "<p><em>yeah!</em></p>\n\n"),
    (
        "MarkdownToHtml autolink",
        "MarkdownToHtml",
        "http://octopus.com",
        '<p><a href="http://octopus.com">http://octopus.com</a></p>\n\n',
    ),
    (
        "Markdown link",
        "Markdown",
        "[Some link](http://octopus.com)",
        '<p><a href="http://octopus.com">Some link</a></p>\n\n',
    ),
    (
        "Markdown table",
        "Markdown",
        "|Header1|Header2|\n|-|-|\n|Cell1|Cell2|",
        "<table>\n<thead>\n<tr>\n<th>Header1</th>\n<th>Header2</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td>Cell1</td>\n<td>Cell2</td>\n</tr>\n</tbody>\n</table>\n\n",
    ),
)

COMPARISONS = _rows(
    ("Match substring", "Match abc", "abc def", "true"),
    ("Match not found", "Match cba", "abc def", "false"),
    ("Match without option", "Match", "abc def", "#{foo | Match}"),
    ("Match too many options", "Match a b", "abc def", '#{foo | Match "a" "b"}'),
    ("Match case-sensitive", "Match ABC", "abc def", "false"),
    ("Match spaces", 'Match "abc def"', "abc def", "true"),
    ("Match single quotes", 'Match "abc\'def"', "abc'def", "true"),
    ("Match wildcard", 'Match ".*"', "abc def", "true"),
    ("Match range", 'Match "[0-9]+"', "abc def1", "true"),
    ("Match escaped", 'Match "c\\(d"', "abc(def", "true"),
    ("StartsWith", "StartsWith abc", "abc def", "true"),
    ("StartsWith not", "StartsWith bc", "abc def", "false"),
    ("StartsWith without option", "StartsWith", "abc def", "#{foo | StartsWith}"),
    ("StartsWith too many", "StartsWith a b", "abc def", '#{foo | StartsWith "a" "b"}'),
    ("StartsWith case-sensitive", "StartsWith ABC", "abc def", "false"),
    ("StartsWith spaces", 'StartsWith "abc d"', "abc def", "true"),
    ("EndsWith", "EndsWith def", "abc def", "true"),
    ("EndsWith not", "EndsWith de", "abc def", "false"),
    ("EndsWith case-sensitive", "EndsWith DEF", "abc def", "false"),
    ("EndsWith quote", 'EndsWith "\'def"', "abc'def", "true"),
    ("Contains", "Contains de", "abc def", "true"),
    ("Contains not", "Contains ed", "abc def", "false"),
    ("Contains without option", "Contains", "abc def", "#{foo | Contains}"),
    ("Contains spaces", 'Contains "c de"', "abc def", "true"),
)

URIS = _rows(
    (
        "relative host",
        "UriPart Host",
        "/docs",
        "[UriPart Host error: This operation is not supported for a relative URI.]",
    ),
    ("no part", "UriPart", "https://octopus.com/docs", "[UriPart error: no argument given]"),
    (
        "unknown part",
        "UriPart bar",
        "https://octopus.com/docs",
        "[UriPart bar error: argument 'bar' not supported]",
    ),
    ("AbsolutePath", "UriPart AbsolutePath", "https://octopus.com/docs", "/docs"),
    ("AbsoluteUri", "UriPart AbsoluteUri", "https://octopus.com/docs", "https://octopus.com/docs"),
    ("Authority", "UriPart Authority", "https://octopus.com/docs", "octopus.com"),
    ("DnsSafeHost", "UriPart DnsSafeHost", "https://octopus.com/docs", "octopus.com"),
    ("Fragment", "UriPart Fragment", "https://octopus.com/docs#filters", "#filters"),
    ("Host", "UriPart Host", "https://octopus.com/docs", "octopus.com"),
    ("HostAndPort", "UriPart HostAndPort", "https://octopus.com/docs", "octopus.com:443"),
    ("HostNameType", "UriPart HostNameType", "https://octopus.com/docs", "Dns"),
    ("IsAbsoluteUri", "UriPart IsAbsoluteUri", "https://octopus.com/docs", "true"),
    ("IsDefaultPort", "UriPart IsDefaultPort", "https://octopus.com/docs", "true"),
    ("IsFile", "UriPart IsFile", "https://octopus.com/docs", "false"),
    ("IsLoopback", "UriPart IsLoopback", "https://octopus.com/docs", "false"),
    ("IsUnc", "UriPart IsUnc", "https://octopus.com/docs", "false"),
    ("Path", "UriPart Path", "https://octopus.com/docs", "/docs"),
    (
        "PathAndQuery",
        "UriPart PathAndQuery",
        "https://octopus.com/docs?filter=faq",
        "/docs?filter=faq",
    ),
    ("Port", "UriPart Port", "https://octopus.com/docs", "443"),
    ("Query", "UriPart Query", "https://octopus.com/docs?filter=faq", "?filter=faq"),
    ("Scheme", "UriPart Scheme", "https://octopus.com/docs", "https"),
    (
        "SchemeAndServer",
        "UriPart SchemeAndServer",
        "https://octopus.com/docs",
        "https://octopus.com",
    ),
    ("UserInfo", "UriPart UserInfo", "https://username:password@octopus.com", "username:password"),
    ("explicit port", "UriPart Authority", "http://localhost:8080/x", "localhost:8080"),
    ("IPv4 loopback", "UriPart IsLoopback", "http://127.0.0.1/", "true"),
)

VERSIONS = [
    ("1", "1", "0", "0", "0", "", "", "", ""),
    ("1.2", "1", "2", "0", "0", "", "", "", ""),
    ("1.2.3", "1", "2", "3", "0", "", "", "", ""),
    ("1.2.3.4", "1", "2", "3", "4", "", "", "", ""),
    ("1.2.3.4-branch.1", "1", "2", "3", "4", "branch.1", "branch", "1", ""),
    ("1.2.3.4-branch.1+meta", "1", "2", "3", "4", "branch.1", "branch", "1", "meta"),
    ("v1.2.3.4-branch.1+meta", "1", "2", "3", "4", "branch.1", "branch", "1", "meta"),
    (
        "V1.2.3.4-branch.hithere+meta",
        "1",
        "2",
        "3",
        "4",
        "branch.hithere",
        "branch",
        "hithere",
        "meta",
    ),
    (
        "V1.2.3.4-branch-hithere+meta",
        "1",
        "2",
        "3",
        "4",
        "branch-hithere",
        "branch",
        "hithere",
        "meta",
    ),
    (
        "V1.2.3.4-branch_hithere+meta",
        "1",
        "2",
        "3",
        "4",
        "branch_hithere",
        "branch",
        "hithere",
        "meta",
    ),
    ("19.0.0.Final", "19", "0", "0", "0", "Final", "Final", "", ""),
    (
        "284.0.0-debian_component_based",
        "284",
        "0",
        "0",
        "0",
        "debian_component_based",
        "debian",
        "component_based",
        "",
    ),
    ("latest", "0", "0", "0", "0", "latest", "latest", "", ""),
    ("v1", "1", "0", "0", "0", "", "", "", ""),
    ("v1.2.3", "1", "2", "3", "0", "", "", "", ""),
    (
        "1.2.3.4-my-branch.1.2+build10",
        "1",
        "2",
        "3",
        "4",
        "my-branch.1.2",
        "my",
        "branch.1.2",
        "build10",
    ),
]
VERSION_FILTERS = [
    "VersionMajor",
    "VersionMinor",
    "VersionPatch",
    "VersionRevision",
    "VersionPreRelease",
    "VersionPreReleasePrefix",
    "VersionPreReleaseCounter",
    "VersionMetadata",
]

HASH_INPUTS = {
    "": "",
    "dog": QUICK,
    "dog.": QUICK + ".",
    "cog": "The quick brown fox jumps over the lazy cog",
    "b64": "VGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRoZSBsYXp5IGRvZw==",
}
HASHES = [
    ("Md5", "", "", "d41d8cd98f00b204e9800998ecf8427e"),
    ("Md5", "dog", "", "9e107d9d372bb6826bd81d3542a419d6"),
    ("Md5", "dog.", "", "e4d909c290d0fb1ca068ffaddf22cbd0"),
    ("Md5", "", "4", "d41d8cd9"),
    ("Md5", "dog", "3", "9e107d"),
    ("Md5", "dog.", "800", "e4d909c290d0fb1ca068ffaddf22cbd0"),
    ("Md5", "dog", "unicode", "b0986ae6ee1eefee8a4a399090126837"),
    ("Md5", "b64", "base64", "9e107d9d372bb6826bd81d3542a419d6"),
    ("Md5", "", "utf-8 5", "d41d8cd98f"),
    ("Md5", "", "5 utf-8", "d41d8cd98f"),
    ("Md5", "", "unicode 3", "d41d8c"),
    ("Md5", "dog.", "2 utf8", "e4d9"),
    ("Sha1", "", "", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    ("Sha1", "dog", "", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"),
    ("Sha1", "cog", "", "de9f2c7fd25e1b3afad3e85a0bd17d9b100db4b3"),
    ("Sha1", "dog", "unicode", "bd136cb58899c93173c33a90dde95ead0d0cf6df"),
    ("Sha1", "b64", "base64", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"),
    ("Sha1", "cog", "utf8 2", "de9f"),
    ("Sha256", "", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("Sha256", "dog", "", "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"),
    ("Sha256", "dog.", "", "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c"),
    (
        "Sha256",
        "dog",
        "unicode",
        "3b5b0eac46c8f0c16fa1b9c187abc8379cc936f6508892969d49234c6c540e58",
    ),
    ("Sha256", "dog", "3", "d7a8fb"),
    (
        "Sha384",
        "",
        "",
        "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b",
    ),
    (
        "Sha384",
        "dog",
        "",
        "ca737f1014a48f4c0b6dd43cb177b0afd9e5169367544c494011e3317dbf9a509cb1e5dc1e85a941bbee3d7f2afbc9b1",
    ),
    (
        "Sha384",
        "dog",
        "unicode",
        "882ab99315b04348e3c7d0bcef46ec8ee7e6b418c5f1180f2dd2b0f86b7d26a6b080d25b180e5e96a7d9912abdd831dd",
    ),
    ("Sha512", "", "4", "cf83e135"),
    (
        "Sha512",
        "dog",
        "",
        "07e547d9586f6a73f73fbac0435ed76951218fb7d0c8d788a309d785436bbb642e93a252a954f23912547d1e8a3b5ed6e1bfd7097821233fa0538f3db854fee6",
    ),
    (
        "Sha512",
        "dog",
        "unicode",
        "568a357630e3113c3932290749f4323eacee0c46ca02189c52d168ed35e0feeaa79e1a7ae725991df6e7d5e5c8f0877b8f51ab244ba7bde173033ad4de7c36de",
    ),
]
INVALID_HASH_OPTIONS = [
    "-1",
    "0",
    "bar",
    "utf8 0",
    "0 utf8",
    "bar 12",
    "12 bar",
    "utf8 12 extra",
    "12 utf8 extra",
    "base64",
]


@pytest.mark.parametrize(
    ("expression", "value", "expected"), TEXT + INDENT + ESCAPING + COMPARISONS + URIS
)
def test_filter_golden(expression: str, value: str, expected: str | None) -> None:
    template = f"#{{foo | {expression}}}"
    if expression.startswith('" "'):
        template, expected = f"#{{foo | Append {expression}}}", "bar bar value"
    assert evaluate(template, {"foo": value}) == expected


@pytest.mark.parametrize("version", VERSIONS, ids=[row[0] for row in VERSIONS])
def test_version_filters(version: tuple[str, ...]) -> None:
    for function, expected in zip(VERSION_FILTERS, version[1:], strict=True):
        assert evaluate(f"#{{Version | {function}}}", {"Version": version[0]}) == expected, function


@pytest.mark.parametrize(("function", "source", "options", "expected"), HASHES)
def test_hash_filters(function: str, source: str, options: str, expected: str) -> None:
    template = f"#{{foo | {function} {options}}}" if options else f"#{{foo | {function}}}"
    assert evaluate(template, {"foo": HASH_INPUTS[source]}) == expected


@pytest.mark.parametrize("function", ["Md5", "Sha1", "Sha256", "Sha384", "Sha512"])
@pytest.mark.parametrize("options", INVALID_HASH_OPTIONS)
def test_invalid_hash_options_are_echoed(function: str, options: str) -> None:
    template = f"#{{foo | {function} {options}}}"
    assert evaluate(template, {"foo": "bar"}).replace('"', "") == template  # type: ignore[union-attr]
    assert evaluate(f"#{{ | {function}}}", {}) == f"#{{ | {function}}}"


def test_filter_options_can_be_tokens() -> None:
    variables = {
        "foo": "abc",
        "regex": "b",
        "replacement": "x",
        "Format": "HH dd-MMM-yyyy",
        "Date": "2030/05/22 09:05:00",
    }
    assert evaluate("#{foo | Replace #{regex}#{replacement}}", variables) == "axc"
    assert (
        evaluate(
            "#{foo | Replace #{regex}#{replacement}}",
            {"foo": 'a"b', "regex": 'a"', "replacement": '"c'},
        )
        == '"cb'
    )
    assert evaluate("#{foo | Match #{regex}}", variables) == "true"
    assert evaluate("#{Date | Format Date #{Format}}", variables) == "09 22-May-2030"
    assert evaluate("#{foo | Append #{missing}}", variables) == "abc#{missing}"


def test_append_and_prepend_need_no_input() -> None:
    assert evaluate("#{|Append foo}", {}) == "foo"
    assert evaluate("#{|Prepend foo}", {}) == "foo"
    assert evaluate("#{ | Append}", {}) == "#{ | Append}"
    assert evaluate('#{foo | Append " " #{foo} " " value}', {"foo": "bar"}) == "bar bar value"


FORMATS = [
    ('#{Foo | Format Date "HH dd-MMM-yyy"}', {"Foo": "2030/05/22 09:05:00"}, "09 22-May-2030"),
    (
        '#{MyDate | Format DateTime "HH dd-MMM-yyyy" }',
        {"MyDate": "2030/05/22 09:05:00"},
        "09 22-May-2030",
    ),
    (
        '#{MyDate | Format DateTime \\"HH dd-MMM-yyyy\\" }',
        {"MyDate": "2030/05/22 09:05:00"},
        "09 22-May-2030",
    ),
    ("#{ Date | Format yyyy}", {"Date": "2030/05/22 09:05:00"}, "2030"),
    ("#{Invalid | Format yyyy}", {"Invalid": "hello World"}, '#{Invalid | Format "yyyy"}'),
    ("#{Cash | Format C}", {"Cash": "23.4"}, "¤23.40"),
    ("#{Cash | Format Double C}", {"Cash": "23.4"}, "¤23.40"),
    ("#{N | Format N2}", {"N": "1234567.891"}, "1,234,567.89"),
    ('#{N | Format \\"#,##0.00\\"}', {"N": "1234.5"}, "1,234.50"),
    ('#{N | Format "#,##0.00"}', {"N": "1234.5"}, '#{N | Format "#,##0.00"}'),
    ('#{N | Format "0.00"}', {"N": "-3.14159"}, "-3.14"),
    ("#{N | Format Int32 D5}", {"N": "42"}, "00042"),
    ("#{N | Format Int X}", {"N": "255"}, "FF"),
    ("#{N | Format P1}", {"N": "0.1234"}, "12.3 %"),
    ("#{N | Format F3}", {"N": "2.5"}, "2.500"),
    (
        '#{D | Format DateTimeOffset "yyyy-MM-ddTHH:mm:sszzz"}',
        {"D": "2030-05-22T09:05:00+02:00"},
        "2030-05-22T09:05:00+02:00",
    ),
    ("#{D | Format s}", {"D": "2030-05-22T09:05:00"}, "2030-05-22T09:05:00"),
    ("#{D | Format D}", {"D": "2030-05-22"}, "Wednesday, 22 May 2030"),
    ('#{D | Format "ddd d MMM yy h:mm tt"}', {"D": "2030-05-22 21:05"}, "Wed 22 May 30 9:05 PM"),
    ("#{D | AddDays 1}", {"D": "2030-05-22T09:05:00"}, "2030-05-23T09:05:00.0000000"),
    ("#{D | AddHours -2}", {"D": "2030-05-22T01:00:00Z"}, "2030-05-21T23:00:00.0000000Z"),
    (
        "#{D | AddMinutes 90}",
        {"D": "2030-05-22T01:00:00+02:00"},
        "2030-05-22T02:30:00.0000000+02:00",
    ),
    ("#{D | AddMonths 1}", {"D": "2030-01-31"}, "2030-02-28T00:00:00.0000000"),
    ("#{D | AddDays x}", {"D": "2030-05-22"}, '#{D | AddDays "x"}'),
]


@pytest.mark.parametrize(("template", "variables", "expected"), FORMATS)
def test_format_and_date_arithmetic_use_dotnet_format_strings(
    template: str, variables: dict[str, str], expected: str
) -> None:
    assert evaluate(template, variables) == expected


def test_now_date_filters_read_the_injected_clock() -> None:
    moment = datetime(2030, 5, 22, 9, 5, 7, 123456, tzinfo=UTC)
    context = FilterContext(now=lambda: moment, local_zone=timezone(timedelta(hours=2)))
    variables = VariableDictionary({}, filter_context=context)
    assert variables.evaluate("#{ | NowDate}") == "2030-05-22T11:05:07.1234560"
    assert variables.evaluate("#{ | NowDateUtc}") == "2030-05-22T09:05:07.1234560Z"
    assert variables.evaluate("#{ | NowDate yyyy}") == "2030"
    assert variables.evaluate("#{ | NowDate | Format Date MMM}") == "May"
    assert variables.evaluate("#{ | NowDateUtc | Format DateTimeOffset zz}") == "+00"
    assert variables.evaluate("#{ | NowDate | Format DateTimeOffset zz}") == "+02"
    assert VariableDictionary({"x": "a"}).evaluate("#{x | NowDate}") == "#{x | NowDate}"


def test_every_documented_filter_is_known_and_validates() -> None:
    documented = [
        *(
            "ToLower",
            "ToUpper",
            "ToBase64",
            "FromBase64",
            "HtmlEscape",
            "UriEscape",
            "UriDataEscape",
        ),
        *("XmlEscape", "JsonEscape", "YamlSingleQuoteEscape", "YamlDoubleQuoteEscape"),
        *("PropertiesKeyEscape", "PropertiesValueEscape", "Markdown", "MarkdownToHTML", "NowDate"),
        *(
            "NowDateUtc",
            "AddHours",
            "AddDays",
            "Format",
            "Match",
            "Replace",
            "StartsWith",
            "EndsWith",
        ),
        *("Contains", "Substring", "Truncate", "Trim", "Indent", "UriPart", "VersionMajor"),
        *("VersionMinor", "VersionPatch", "VersionPreRelease", "VersionPreReleasePrefix"),
        *("VersionPreReleaseCounter", "VersionRevision", "VersionMetadata", "Append", "Prepend"),
        *("Md5", "Sha1", "Sha256", "Sha384", "Sha512", "Null"),
    ]
    for name in documented:
        assert name.lower() in FILTERS, name
        assert validate(f"#{{x | {name}}}") == [], name


def test_a_regex_input_over_the_limit_is_refused() -> None:
    assert (
        evaluate('#{v | Match "a"}', {"v": "a" * 100_001})
        == "[Match error: the input is longer than 100000 characters]"
    )
