"""The "deploy raw YAML" step against a small fake Kubernetes API on 127.0.0.1.

A fake because no Kubernetes API server can run here (no kube-apiserver, envtest, kind or
kwok on this machine). It implements only what the step uses: server-side apply (PATCH with
`application/apply-patch+yaml`), GET of one object, and watch (`?watch=true`, JSON lines);
Deployments roll out in a few status updates, as the controller would report them, and a
deployment named `broken` ends with `ProgressDeadlineExceeded`, one named `stuck` never moves.
The step runner itself runs as a real process.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from cephalo_common.embedded import free_port

TOKEN = "kube-token-5ecr3t"


@dataclass
class FakeKubernetes:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    applies: list[dict[str, Any]] = field(default_factory=list)
    watchers: dict[str, list[asyncio.Queue[dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    version: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"message": "Unauthorized"}, status=401)
        if request.method == "PATCH":
            return await self.apply(request)
        if request.method == "GET" and request.query.get("watch") == "true":
            return await self.watch(request)
        if request.method == "GET" and request.path in self.objects:
            return web.json_response(self.objects[request.path])
        return web.json_response({"message": f"{request.path} not found"}, status=404)

    async def apply(self, request: web.Request) -> web.Response:
        body = yaml.safe_load(await request.text())
        self.applies.append(
            {
                "path": request.path,
                "content_type": request.content_type,
                "query": dict(request.query),
                "body": body,
            }
        )
        current = self.objects.get(request.path, {})
        generation = (current.get("metadata") or {}).get("generation", 0) + 1
        body["metadata"] = {**body["metadata"], "generation": generation}
        body["status"] = {"observedGeneration": generation - 1}
        self.store(request.path, body)
        if body["kind"] == "Deployment" and body["metadata"]["name"] != "stuck":
            task = asyncio.create_task(self.roll_out(request.path))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return web.json_response(body)

    def store(self, path: str, resource: dict[str, Any]) -> None:
        self.version += 1
        resource["metadata"]["resourceVersion"] = str(self.version)
        self.objects[path] = resource
        for queue in self.watchers[path.rsplit("/", 1)[0]]:
            queue.put_nowait({"type": "MODIFIED", "object": resource})

    async def roll_out(self, path: str) -> None:
        resource = self.objects[path]
        replicas = resource["spec"].get("replicas", 1)
        generation = resource["metadata"]["generation"]
        for available in range(replicas + 1):
            await asyncio.sleep(0.1)
            status = {
                "observedGeneration": generation,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "availableReplicas": available,
            }
            if resource["metadata"]["name"] == "broken":
                status["availableReplicas"] = 0
                status["conditions"] = [
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": 'ReplicaSet "broken-7d9" has timed out progressing.',
                    },
                    {
                        "type": "Available",
                        "status": "False",
                        "reason": "MinimumReplicasUnavailable",
                    },
                ]
                self.store(path, {**resource, "status": status})
                return
            self.store(path, {**resource, "status": status})

    async def watch(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.watchers[request.path].append(queue)
        try:
            async with asyncio.timeout(30):
                while True:
                    event = await queue.get()
                    await response.write(json.dumps(event).encode() + b"\n")
        except TimeoutError:
            pass
        finally:
            self.watchers[request.path].remove(queue)
        return response


@pytest.fixture
async def kubernetes() -> AsyncIterator[tuple[FakeKubernetes, str]]:
    fake = FakeKubernetes()
    runner = web.AppRunner(fake.app(), shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield fake, f"http://127.0.0.1:{port}"
    for task in list(fake.tasks):
        task.cancel()
    await runner.cleanup()


MANIFEST = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: "#{Greeting}"
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: #{DeploymentName}
spec:
  replicas: #{Replicas}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27"}]
"""


async def run_step(
    url: str, tmp_path: Path, manifest: str = MANIFEST, **variables: str
) -> tuple[int, str, str]:
    action = {
        "action_type": "Octopus.KubernetesDeployRawYaml",
        "properties": {
            "Octopus.Action.KubernetesContainers.CustomResourceYaml": manifest,
            "Octopus.Action.Kubernetes.DeploymentTimeout": variables.pop("Timeout", "60"),
        },
        "variables": {
            "Octopus.Action.Kubernetes.ClusterUrl": url,
            "Octopus.Action.Kubernetes.Namespace": "prod",
            "Octopus.Action.Kubernetes.Token": TOKEN,
            "Greeting": "hello",
            "DeploymentName": "web",
            "Replicas": "2",
            **variables,
        },
        "sensitive_variables": ["Octopus.Action.Kubernetes.Token"],
        "home": str(tmp_path / "home"),
    }
    path = tmp_path / "action.json"
    path.write_text(json.dumps(action))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cephalo_agent.steprunner",
        "--action",
        str(path),
        "--consume",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_a_multi_document_manifest_is_applied_and_rolled_out(
    kubernetes: tuple[FakeKubernetes, str], tmp_path: Path
) -> None:
    fake, url = kubernetes
    code, out, err = await run_step(url, tmp_path)
    assert code == 0, out + err
    assert [a["path"] for a in fake.applies] == [
        "/api/v1/namespaces/prod/configmaps/web-config",
        "/api/v1/namespaces/prod/services/web",
        "/apis/apps/v1/namespaces/prod/deployments/web",
    ]
    for applied in fake.applies:
        assert applied["content_type"] == "application/apply-patch+yaml"
        assert applied["query"] == {"fieldManager": "cephalo", "force": "true"}
        assert applied["body"]["metadata"]["namespace"] == "prod"
    assert fake.applies[0]["body"]["data"] == {"greeting": "hello"}
    assert fake.applies[2]["body"]["spec"]["replicas"] == 2
    assert "Validated 3 resource(s)" in out
    assert "Deployment prod/web: 1 of 2 replicas available, 2 updated" in out
    assert "Deployment prod/web is rolled out." in out
    assert TOKEN not in out + err


async def test_a_failed_rollout_fails_the_step_with_its_conditions(
    kubernetes: tuple[FakeKubernetes, str], tmp_path: Path
) -> None:
    _, url = kubernetes
    code, _, err = await run_step(url, tmp_path, DeploymentName="broken")
    assert code == 1
    assert (
        'Deployment prod/broken: Progressing=False ProgressDeadlineExceeded: ReplicaSet "broken-7d9" '
        "has timed out progressing." in err
    )
    assert "Available=False MinimumReplicasUnavailable" in err
    assert err.strip().splitlines()[-1] == "The rollout of Deployment prod/broken failed."


async def test_a_rollout_that_never_finishes_times_out_cleanly(
    kubernetes: tuple[FakeKubernetes, str], tmp_path: Path
) -> None:
    _, url = kubernetes
    code, _, err = await run_step(url, tmp_path, DeploymentName="stuck", Timeout="1")
    assert code == 1
    assert err.strip().splitlines()[-1] == "The rollout did not finish within 1 seconds."
    assert "Traceback" not in err


async def test_an_invalid_manifest_is_refused_before_anything_is_applied(
    kubernetes: tuple[FakeKubernetes, str], tmp_path: Path
) -> None:
    fake, url = kubernetes
    code, _, err = await run_step(url, tmp_path, Replicas="two")
    assert code == 1
    assert "Deployment web is invalid at spec.replicas" in err
    assert fake.applies == []
    code, _, err = await run_step(url, tmp_path, "kind: Nothing\n")
    assert code == 1 and "needs apiVersion, kind and metadata.name" in err


async def test_a_wrong_token_is_reported_not_hidden(
    kubernetes: tuple[FakeKubernetes, str], tmp_path: Path
) -> None:
    _, url = kubernetes
    code, _, err = await run_step(url, tmp_path, **{"Octopus.Action.Kubernetes.Token": "wrong"})
    assert code == 1
    assert "HTTP 401 Unauthorized" in err
