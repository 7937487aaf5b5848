"""A small Markdown-to-HTML renderer for the `Markdown`/`MarkdownToHtml` filters.

Octostache uses Markdig with pipe tables, emphasis extras and auto-links; release notes are
the usual input. This covers what release notes use (paragraphs, headings, lists, quotes,
fenced code, pipe tables, emphasis, strike-through, code spans, links and bare URLs) and
prints it the way Markdig does. Raw HTML in the input is escaped, never passed through.
"""

from __future__ import annotations

import html
import re

_HEADING = re.compile(r"(#{1,6})\s+(.*?)\s*#*\s*")
_BULLET = re.compile(r"\s{0,3}[-*+]\s+(.*)")
_ORDERED = re.compile(r"\s{0,3}\d{1,9}[.)]\s+(.*)")
_RULE = re.compile(r"\s{0,3}([-*_])(?:\s*\1){2,}\s*")
_TABLE_SEPARATOR = re.compile(r"\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*")
_INLINE = re.compile(
    r"(?P<code>`+)(?P<code_text>.+?)(?P=code)"
    r"|\[(?P<label>[^\]]+)\]\((?P<href>[^)\s]+)\)"
    r"|(?P<url>https?://[^\s<]*[^\s<.,;:!?\"')\]])"
    r"|(?P<strong>\*\*|__)(?P<strong_text>.+?)(?P=strong)"
    r"|(?P<em>[*_])(?P<em_text>[^*_]+?)(?P=em)"
    r"|~~(?P<del>.+?)~~"
)


def to_html(markdown: str) -> str:
    lines = markdown.strip().replace("\r\n", "\n").split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.lstrip().startswith("```"):
            i = _fenced(lines, i, out)
        elif heading := _HEADING.fullmatch(line):
            level = len(heading.group(1))
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
            i += 1
        elif _RULE.fullmatch(line):
            out.append("<hr />")
            i += 1
        elif "|" in line and i + 1 < len(lines) and _TABLE_SEPARATOR.fullmatch(lines[i + 1]):
            i = _table(lines, i, out)
        elif _BULLET.fullmatch(line) or _ORDERED.fullmatch(line):
            i = _list(lines, i, out)
        elif line.lstrip().startswith(">"):
            quoted: list[str] = []
            while i < len(lines) and lines[i].lstrip().startswith(">"):
                quoted.append(lines[i].lstrip()[1:].removeprefix(" "))
                i += 1
            out.append("<blockquote>\n" + to_html("\n".join(quoted)) + "</blockquote>")
        else:
            paragraph: list[str] = []
            while i < len(lines) and lines[i].strip() and not _starts_block(lines, i):
                paragraph.append(lines[i].strip())
                i += 1
            out.append(f"<p>{inline(chr(10).join(paragraph))}</p>")
    return "".join(block + "\n" for block in out)


def _starts_block(lines: list[str], i: int) -> bool:
    line = lines[i]
    return bool(
        _HEADING.fullmatch(line)
        or _RULE.fullmatch(line)
        or line.lstrip().startswith(("```", ">"))
        or _BULLET.fullmatch(line)
    )


def _fenced(lines: list[str], i: int, out: list[str]) -> int:
    language = lines[i].strip()[3:].strip()
    body: list[str] = []
    i += 1
    while i < len(lines) and not lines[i].lstrip().startswith("```"):
        body.append(html.escape(lines[i], quote=False))
        i += 1
    attribute = f' class="language-{html.escape(language)}"' if language else ""
    out.append(f"<pre><code{attribute}>" + "".join(line + "\n" for line in body) + "</code></pre>")
    return i + 1


def _cells(line: str) -> list[str]:
    stripped = line.strip()
    stripped = stripped[1:] if stripped.startswith("|") else stripped
    stripped = stripped[:-1] if stripped.endswith("|") else stripped
    return [cell.strip() for cell in stripped.split("|")]


def _table(lines: list[str], i: int, out: list[str]) -> int:
    header = _cells(lines[i])
    rows: list[list[str]] = []
    i += 2
    while i < len(lines) and "|" in lines[i] and lines[i].strip():
        rows.append(_cells(lines[i]))
        i += 1
    parts = ["<table>", "<thead>", "<tr>"]
    parts += [f"<th>{inline(cell)}</th>" for cell in header]
    parts += ["</tr>", "</thead>"]
    if rows:
        parts.append("<tbody>")
        for row in rows:
            cells = (row + [""] * len(header))[: len(header)]
            parts += ["<tr>", *(f"<td>{inline(cell)}</td>" for cell in cells), "</tr>"]
        parts.append("</tbody>")
    parts.append("</table>")
    out.append("\n".join(parts))
    return i


def _list(lines: list[str], i: int, out: list[str]) -> int:
    ordered = _ORDERED.fullmatch(lines[i]) is not None
    pattern = _ORDERED if ordered else _BULLET
    items: list[str] = []
    while i < len(lines) and (match := pattern.fullmatch(lines[i])):
        items.append(f"<li>{inline(match.group(1))}</li>")
        i += 1
    tag = "ol" if ordered else "ul"
    out.append(f"<{tag}>\n" + "\n".join(items) + f"\n</{tag}>")
    return i


def inline(text: str) -> str:
    out: list[str] = []
    position = 0
    for match in _INLINE.finditer(text):
        out.append(html.escape(text[position : match.start()], quote=True).replace("&#x27;", "'"))
        out.append(_render(match))
        position = match.end()
    out.append(html.escape(text[position:], quote=True).replace("&#x27;", "'"))
    return "".join(out)


def _render(match: re.Match[str]) -> str:
    groups = match.groupdict()
    if groups["code"]:
        return f"<code>{html.escape(groups['code_text'].strip())}</code>"
    if groups["label"]:
        return f'<a href="{html.escape(groups["href"])}">{inline(groups["label"])}</a>'
    if groups["url"]:
        url = html.escape(groups["url"])
        return f'<a href="{url}">{url}</a>'
    if groups["strong"]:
        return f"<strong>{inline(groups['strong_text'])}</strong>"
    if groups["em"]:
        return f"<em>{inline(groups['em_text'])}</em>"
    return f"<del>{inline(groups['del'] or '')}</del>"
