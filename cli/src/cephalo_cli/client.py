"""A small synchronous client of the public API that turns problems into readable errors."""

from __future__ import annotations

import time
from typing import Any

import httpx

TERMINAL_STATES = frozenset({"Success", "Failed", "Canceled", "TimedOut"})


class ApiError(Exception):
    """The server answered with a problem (4xx/5xx)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.status = status


class Unreachable(Exception):
    """The server could not be reached at all."""


class CephaloClient:
    def __init__(
        self, server: str, space: str, api_key: str | None = None, timeout: float = 30
    ) -> None:
        headers = {"X-Cephalo-Api-Key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=timeout)
        self._base = f"/api/v1/spaces/{space}"

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, self._base + path, **kwargs)
        except httpx.TransportError as error:
            raise Unreachable(f"cannot reach {self._http.base_url}: {error}") from error
        if response.status_code >= 400:
            body = _problem(response)
            raise ApiError(response.status_code, body.get("title", "Error"), body.get("detail", ""))
        return response.json() if response.content else None

    def deploy(self, project: str, version: str, environment: str) -> dict[str, Any]:
        release = self.find_release(project, version)
        env = self.call("GET", f"/environments/{environment}")
        return dict(
            self.call(
                "POST",
                "/deployments",
                json={"release_id": release["id"], "environment_id": env["id"]},
            )
        )

    def find_release(self, project: str, version: str) -> dict[str, Any]:
        query = {} if version == "latest" else {"partial_name": version}
        page = self.call("GET", f"/projects/{project}/releases", params=query)
        releases = page["items"] if isinstance(page, dict) else page
        if version == "latest" and releases:
            return dict(releases[0])
        for release in releases:
            if release["version"].lower() == version.lower():
                return dict(release)
        raise ApiError(404, "Not found", f"release {version} of {project} was not found")

    def wait_for_task(
        self, deployment_id: str, timeout: float, poll: float = 0.5
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tasks = self.call("GET", f"/tasks?deployment_id={deployment_id}")
            items = tasks["items"] if isinstance(tasks, dict) else tasks
            if items and items[0]["state"] in TERMINAL_STATES:
                return dict(self.call("GET", f"/tasks/{items[0]['id']}"))
            time.sleep(poll)
        raise TimeoutError(f"deployment {deployment_id} did not finish within {timeout:.0f} s")

    def task_log(self, task_id: str) -> list[dict[str, Any]]:
        log = self.call("GET", f"/tasks/{task_id}/log")
        return list(log["items"] if isinstance(log, dict) else log)


def _problem(response: httpx.Response) -> dict[str, str]:
    try:
        body = response.json()
    except ValueError:
        return {"title": f"HTTP {response.status_code}", "detail": response.text[:200]}
    return body if isinstance(body, dict) else {"title": f"HTTP {response.status_code}"}
