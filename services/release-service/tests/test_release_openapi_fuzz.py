"""No input schemathesis generates from the OpenAPI document gets a 500.

The app runs in-process (its lifespan on a loop of its own, real Postgres and NATS);
examples are few per operation and derandomized, so the suite stays fast and repeatable.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck

from cephalo_common.testing import running
from cephalo_release.app import create_app
from cephalo_release.settings import ReleaseSettings

MAX_EXAMPLES = 3


class Served:
    """The app running in its own thread and event loop; hypothesis drives it synchronously."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client: httpx.AsyncClient | None = None
        self._stop = asyncio.Event()
        self._ready = threading.Event()
        self._task = asyncio.run_coroutine_threadsafe(self._serve(), self.loop)
        if not self._ready.wait(30):
            raise RuntimeError("release-service did not become ready")

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with running(self.app) as client:
            self.client = client
            self._ready.set()
            await self._stop.wait()

    def run(self, coroutine: Coroutine[Any, Any, httpx.Response]) -> httpx.Response:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def request(self, **kwargs: Any) -> httpx.Response:
        assert self.client is not None
        return self.run(self.client.request(**kwargs))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._task.result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def served(release_settings: ReleaseSettings) -> Iterator[Served]:
    server = Served(create_app(release_settings.model_copy(update={"run_workers": False})))
    yield server
    server.close()


def test_no_generated_request_gets_a_500(served: Served) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", served.app)
    failures: list[str] = []
    for operation in schema.get_all_operations():
        api_operation = operation.ok()

        @hypothesis.given(case=api_operation.as_strategy())
        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        def call(case: schemathesis.Case) -> None:
            kwargs = case.as_transport_kwargs(base_url="http://testserver")
            kwargs.pop("files", None)
            kwargs.pop("cookies", None)
            response = served.request(**kwargs)
            if response.status_code >= 500:
                failures.append(f"{case.method} {kwargs['url']}: {response.text[:300]}")

        call()
    assert failures == []
