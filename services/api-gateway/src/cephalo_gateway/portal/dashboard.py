"""The dashboard grid: the API's one dashboard answer turned into table rows.

The grid is the portal's one big table (100 projects x 5 environments and more). Jinja
escaping every value of every cell cost about 20 ms of CPU per page, so the cells of a row
are written here, escaping each distinct text once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from markupsafe import Markup, escape


class Row(NamedTuple):
    project_id: str
    project: str
    cells: Markup


class _Escaped(dict[Any, str]):
    """Texts escaped once per page: names, states and versions repeat across cells."""

    def __missing__(self, text: Any) -> str:
        self[text] = value = str(escape(text))
        return value


def rows_of(board: Mapping[str, Any], prefix: str) -> list[Row]:
    """One row per project with one cell per environment, in the board's order."""
    html = _Escaped()
    latest = {(str(i["project_id"]), str(i["environment_id"])): i for i in board["items"]}
    environments = [(str(e["id"]), html[e["name"]]) for e in board["environments"]]
    rows = []
    for project in board["projects"]:
        project_id, name = str(project["id"]), str(project["name"])
        cells = "".join(
            _cell(latest.get((project_id, env_id)), html[name], environment, prefix, html)
            for env_id, environment in environments
        )
        rows.append(Row(project_id, name, Markup(cells)))  # noqa: S704  # nosec B704 - escaped
    return rows


def _cell(
    item: Mapping[str, Any] | None, project: str, environment: str, prefix: str, html: _Escaped
) -> str:
    where = f'data-project="{project}" data-environment="{environment}"'
    if item is None:
        return f'<td class="cell empty" {where}>—</td>'
    state, version = html[item["state"]], html[item["release_version"]]
    link = f"{prefix}/deployments/{html[item['deployment_id']]}"
    return (
        f'<td class="cell state-{state.lower()}" {where} data-state="{state}">'
        f'<a href="{link}">{version}</a> <span class="state">{state}</span></td>'
    )
