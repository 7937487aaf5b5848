"""Every HTTP call the CLI makes, in one place, so API changes touch one module.

Synchronous httpx against the api-gateway's `/api/v1/spaces/{space}/...`; problems become
`ApiError` with the server's own words, transport failures `Unreachable`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from cephalo_cli import __version__
from cephalo_cli.config import Config
from cephalo_cli.errors import ApiError, Unreachable, UsageError

TERMINAL_STATES = frozenset({"Success", "Failed", "Canceled", "TimedOut"})
UPLOAD_CHUNK = 1024 * 1024
MAX_PAGES = 1000


class CephaloClient:
    def __init__(self, config: Config, timeout: float = 30) -> None:
        headers = {"User-Agent": f"cephalo-cli/{__version__}"}
        if config.api_key:
            headers["X-Cephalo-Api-Key"] = config.api_key
        self.server = config.server
        self._http = httpx.Client(base_url=config.server, headers=headers, timeout=timeout)
        self._base = f"/api/v1/spaces/{quote(config.space, safe='')}"

    def __enter__(self) -> CephaloClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.InvalidURL as error:
            raise UsageError(f"--server {self.server!r} is not a usable URL: {error}") from None
        except httpx.TransportError as error:
            raise Unreachable(
                f"cannot reach {self.server}: {error or type(error).__name__}"
            ) from None
        if response.status_code >= 400:
            raise ApiError(response.status_code, problem_message(response))
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call below the space; the decoded JSON body (None when empty)."""
        response = self.request(method, self._base + path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise Unreachable(
                f"{self.server} answered {method} {path} with something other than JSON; "
                "is it a Cephalo server?"
            ) from None

    def items(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every item of a list, following `{items, total}` pages; plain arrays as they are."""
        collected: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = self.call(
                "GET", path, params={**(params or {}), "skip": len(collected), "take": 100}
            )
            if not isinstance(page, dict):
                return list(page)
            collected += page["items"]
            if not page["items"] or len(collected) >= page.get("total", 0):
                break
        return collected

    # Resources

    def projects(self) -> list[dict[str, Any]]:
        return self.items("/projects")

    def project(self, ref: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/projects/{_ref(ref)}"))

    def environments(self) -> list[dict[str, Any]]:
        return self.items("/environments")

    def environment(self, ref: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/environments/{_ref(ref)}"))

    def machines(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/machines"))

    def machine(self, ref: str) -> dict[str, Any]:
        """By id, or by name (case-insensitively) from the list."""
        for machine in self.machines():
            if ref in (machine["id"], machine["name"]) or machine["name"].lower() == ref.lower():
                return machine
        raise ApiError(404, f'deployment target "{ref}" was not found')

    def deployment_process(self, project_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/projects/{project_id}/deployment-process"))

    def channel(self, project_id: str, ref: str | None) -> dict[str, Any]:
        """The named channel, or the project's default one."""
        if ref:
            return dict(self.call("GET", f"/projects/{project_id}/channels/{_ref(ref)}"))
        channels = self.items(f"/projects/{project_id}/channels")
        return next((c for c in channels if c.get("is_default")), channels[0] if channels else {})

    def server_certificate(self) -> dict[str, Any]:
        return dict(self.request("GET", "/api/v1/server-certificate").json())

    # Packages

    def push_package(
        self, path: Path, overwrite_mode: str, on_progress: Callable[[int], None]
    ) -> tuple[dict[str, Any], bool]:
        """Stream the file as the raw body (never read whole); True when it was stored."""
        size = path.stat().st_size
        response = self.request(
            "POST",
            self._base + "/packages",
            params={"filename": path.name, "overwriteMode": overwrite_mode},
            content=_chunks(path, on_progress),
            headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
            timeout=httpx.Timeout(30, read=600),
        )
        return dict(response.json()), response.status_code == 201

    def packages(self, filter: str | None = None) -> list[dict[str, Any]]:
        params = {"filter": filter} if filter else {}
        return list(self.call("GET", "/packages/ids", params={**params, "limit": 500}))

    def package_versions(self, package_id: str, take: int = 100) -> list[dict[str, Any]]:
        path = f"/packages/{_ref(package_id)}/versions"
        return list(self.call("GET", path, params={"limit": take}))

    def latest_package(self, package_id: str, version_range: str, tag: str) -> dict[str, Any]:
        params = {"version_range": version_range, "prerelease_tag": tag}
        return dict(self.call("GET", f"/packages/{_ref(package_id)}/latest", params=params))

    # Releases and deployments

    def create_release(self, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("POST", f"/projects/{project_id}/releases", json=body))

    def find_release(self, project: dict[str, Any], version: str) -> dict[str, Any] | None:
        """The release with this number, or the newest one for 'latest'."""
        path = f"/projects/{project['id']}/releases"
        if version.lower() == "latest":
            page = self.call("GET", path, params={"take": 1})
            return dict(page["items"][0]) if page["items"] else None
        for release in self.items(path, {"partial_name": version}):
            if release["version"].lower() == version.lower():
                return release
        return None

    def release(self, release_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/releases/{release_id}"))

    def releases(self, project_id: str, take: int) -> list[dict[str, Any]]:
        page = self.call("GET", f"/projects/{project_id}/releases", params={"take": take})
        return list(page["items"])

    def last_successful_deployment(
        self, project_id: str, environment_id: str
    ) -> dict[str, Any] | None:
        params = {
            "project_id": project_id,
            "environment_id": environment_id,
            "state": "Success",
            "take": 1,
        }
        page = self.call("GET", "/deployments", params=params)
        return dict(page["items"][0]) if page["items"] else None

    def create_deployment(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("POST", "/deployments", json=body))

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/deployments/{deployment_id}"))

    # Tasks

    def task(self, task_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/tasks/{task_id}"))

    def task_of_deployment(self, deployment_id: str) -> dict[str, Any] | None:
        tasks = self.call("GET", "/tasks", params={"deployment_id": deployment_id, "limit": 1})
        return dict(tasks[0]) if tasks else None

    def task_log(self, task_id: str, after: int = 0) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/tasks/{task_id}/log", params={"after": after}))

    def cancel_task(self, task_id: str) -> dict[str, Any] | None:
        task = self.task(task_id)
        result = self.call("POST", f"/tasks/{task['id']}/cancel")
        return dict(result) if isinstance(result, dict) else None


def _chunks(path: Path, on_progress: Callable[[int], None]) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(UPLOAD_CHUNK):
            on_progress(len(chunk))
            yield chunk


def _ref(value: str) -> str:
    return quote(value, safe="")


def problem_message(response: httpx.Response) -> str:
    """One line from an RFC 9457 problem (or an Octopus error, or plain text)."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())[:200]
        return f"HTTP {status}" + (f": {text}" if text else "")
    if not isinstance(body, dict):
        return f"HTTP {status}"
    detail = body.get("detail") or body.get("ErrorMessage") or ""
    title = body.get("title") or f"HTTP {status}"
    fields = [
        f"{e.get('field')}: {e.get('message')}"
        for e in body.get("errors") or []
        if isinstance(e, dict)
    ]
    message = f"{title}: {detail}" if detail else title
    if status == 401:
        message += " (check the API key: --api-key, CEPHALO_API_KEY or `cephalo login`)"
    return " ".join((message + (" (" + "; ".join(fields) + ")" if fields else "")).split())
