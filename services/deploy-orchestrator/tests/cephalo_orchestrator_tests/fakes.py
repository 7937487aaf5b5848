"""A tiny stand-in for agent-gateway's machines query, served over real HTTP by uvicorn.

Only `GET /api/v1/spaces/{space_id}/machines` (with the documented filter: environment and
any of the roles), `POST …/script-runs/{ticket}/cancel` (recorded) and
`GET …/script-runs/{ticket}` (what a test put in `script_runs`, else 404) are faked. The real agent-gateway is exercised by the end-to-end
suite (tests/e2e), which runs every service as a real process.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import defaultdict
from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from cephalo_common.embedded import free_port
from cephalo_common.testing import serving


class FakeAgentGateway:
    def __init__(self) -> None:
        self.machines: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.failures: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)
        self.cancelled: list[str] = []
        self.script_runs: dict[str, dict[str, Any]] = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._exits: contextlib.AsyncExitStack | None = None

    def add_machine(
        self,
        space_id: uuid.UUID,
        environment_id: uuid.UUID,
        name: str,
        roles: list[str],
        *,
        disabled: bool = False,
    ) -> dict[str, Any]:
        machine = {
            "id": str(uuid.uuid4()),
            "space_id": str(space_id),
            "name": name,
            "environment_ids": [str(environment_id)],
            "roles": roles,
            "mode": "polling",
            "thumbprint": "0" * 64,
            "is_disabled": disabled,
            "health_status": "Healthy",
            "connected": True,
        }
        self.machines[str(space_id)].append(machine)
        return machine

    def fail_next(self, space_id: uuid.UUID, times: int) -> None:
        """Answer the next `times` queries for this space with 503."""
        self.failures[str(space_id)] = times

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/api/v1/spaces/{space_id}/machines", response_model=None)
        async def machines(
            space_id: str,
            environment_id: str,
            role: Annotated[list[str] | None, Query()] = None,
        ) -> Any:
            self.calls[space_id] += 1
            if self.failures[space_id] > 0:
                self.failures[space_id] -= 1
                return JSONResponse({"title": "Service unavailable"}, status_code=503)
            if space_id == "00000000-0000-0000-0000-000000000404":
                return JSONResponse({"detail": "space not found"}, status_code=404)
            if space_id == "00000000-0000-0000-0000-000000000200":
                return JSONResponse({"unexpected": True})
            wanted = set(role or [])
            return [
                machine
                for machine in self.machines[space_id]
                if environment_id in machine["environment_ids"]
                and (not wanted or wanted & set(machine["roles"]))
            ]

        @app.post("/api/v1/spaces/{space_id}/script-runs/{ticket}/cancel", status_code=202)
        async def cancel(space_id: str, ticket: str) -> dict[str, str]:
            self.cancelled.append(ticket)
            return {"ticket": ticket}

        @app.get("/api/v1/spaces/{space_id}/script-runs/{ticket}", response_model=None)
        async def script_run(space_id: str, ticket: str) -> Any:
            if ticket not in self.script_runs:
                return JSONResponse({"detail": "script run not found"}, status_code=404)
            return self.script_runs[ticket]

        return app

    async def start(self) -> None:
        self._exits = contextlib.AsyncExitStack()
        await self._exits.enter_async_context(serving(self.app(), port=self.port, lifespan="off"))

    async def stop(self) -> None:
        if self._exits is not None:
            await self._exits.aclose()


class FakePackageFeed:
    """package-feed's version detail and signed-link routes, scripted per package (the real
    feed needs S3 storage; it is exercised by the end-to-end suite in tests/e2e). Only
    `GET …/packages/{id}/versions/{version}` and `POST …/download-url` are faked."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.failures = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._exits: contextlib.AsyncExitStack | None = None

    def add_version(self, space_id: uuid.UUID, package_id: str, version: str) -> dict[str, Any]:
        detail = {"sha256": uuid.uuid4().hex * 2, "size_bytes": len(package_id) * 1000}
        self.versions[(str(space_id), package_id.lower(), version)] = detail
        return detail

    def app(self) -> FastAPI:
        app = FastAPI()
        prefix = "/api/v1/spaces/{space_id}/packages/{package_id}/versions/{version}"

        def found(space_id: str, package_id: str, version: str) -> dict[str, Any] | None:
            return self.versions.get((space_id, package_id.lower(), version))

        @app.get(prefix, response_model=None)
        async def detail(space_id: str, package_id: str, version: str) -> Any:
            if self.failures > 0:
                self.failures -= 1
                return JSONResponse({"title": "Service unavailable"}, status_code=503)
            answer = found(space_id, package_id, version)
            if answer is None:
                return JSONResponse({"detail": "no such version"}, status_code=404)
            return {"package_id": package_id, "version": version, **answer}

        @app.post(prefix + "/download-url", response_model=None)
        async def download_url(space_id: str, package_id: str, version: str) -> Any:
            if found(space_id, package_id, version) is None:
                return JSONResponse({"detail": "no such version"}, status_code=404)
            path = f"/api/v1/spaces/{space_id}/packages/{package_id}/versions/{version}/content"
            return {"url": f"{path}?expires=1&signature=abc", "path": path}

        @app.get("/api/v1/spaces/{space_id}/script-runs/{ticket}", response_model=None)
        async def script_run(space_id: str, ticket: str) -> Any:
            if ticket not in self.script_runs:
                return JSONResponse({"detail": "script run not found"}, status_code=404)
            return self.script_runs[ticket]

        return app

    async def start(self) -> None:
        self._exits = contextlib.AsyncExitStack()
        await self._exits.enter_async_context(serving(self.app(), port=self.port, lifespan="off"))

    async def stop(self) -> None:
        if self._exits is not None:
            await self._exits.aclose()
