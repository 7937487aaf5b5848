"""What every portal page must have: a title, a main landmark, labelled form controls.

Used by the portal's tests (in process and in the browser) on every page they see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

UNLABELLED_TYPES = frozenset({"hidden", "submit", "button", "reset", "image"})


@dataclass
class PageShape:
    title: str = ""
    mains: int = 0
    labelled_ids: set[str] = field(default_factory=set)
    controls: list[tuple[str | None, bool]] = field(default_factory=list)

    def problems(self) -> list[str]:
        found = []
        if not self.title.strip():
            found.append("no <title>")
        if self.mains != 1:
            found.append(f"{self.mains} main landmarks")
        for control_id, wrapped in self.controls:
            if not wrapped and (control_id is None or control_id not in self.labelled_ids):
                found.append(f"form control without a label: {control_id!r}")
        return found


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.shape = PageShape()
        self._in_title = False
        self._label_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "title":
            self._in_title = True
        elif tag == "main" or named.get("role") == "main":
            self.shape.mains += 1
        elif tag == "label":
            self._label_depth += 1
            if named.get("for"):
                self.shape.labelled_ids.add(str(named["for"]))
        elif tag in ("input", "select", "textarea"):
            if tag == "input" and (named.get("type") or "text") in UNLABELLED_TYPES:
                return
            wrapped = self._label_depth > 0 or bool(named.get("aria-label"))
            self.shape.controls.append((named.get("id"), wrapped))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "label":
            self._label_depth = max(0, self._label_depth - 1)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.shape.title += data


def page_problems(html: str) -> list[str]:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.shape.problems()
