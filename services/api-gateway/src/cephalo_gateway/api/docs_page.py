"""The API docs page: plain HTML with no external assets, so it works air-gapped.

Vendored Swagger UI replaces it with the portal work.
"""

from __future__ import annotations

from html import escape
from typing import Any

from cephalo_gateway.domain.openapi import operations

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}"
    "table{border-collapse:collapse;width:100%}"
    "td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left}"
    "code{font-size:.95em}.m{font-weight:600;width:6rem}"
)


def render_docs_page(document: dict[str, Any]) -> str:
    info = document.get("info", {})
    rows = "\n".join(
        f'<tr><td class="m">{escape(method)}</td><td><code>{escape(path)}</code></td>'
        f"<td>{escape(summary)}</td></tr>"
        for method, path, summary in operations(document)
    )
    description = escape(str(info.get("description", ""))).replace("\n", "<br>")
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(str(info.get('title', 'API')))}</title><style>{STYLE}</style></head>"
        f"<body><h1>{escape(str(info.get('title', 'API')))} "
        f"<small>{escape(str(info.get('version', '')))}</small></h1>"
        f"<p>{description}</p>"
        '<p>Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a></p>'
        "<table><thead><tr><th>Method</th><th>Path</th><th>Summary</th></tr></thead>"
        f"<tbody>\n{rows}\n</tbody></table></body></html>\n"
    )
