"""Deploy raw YAML: server-side apply of every document, then wait for the rollouts.

Apply uses field manager `cephalo` with `force=true` (the step owns the fields it sets).
Waiting reads each workload once, then follows its watch (re-reading when the server ends
the watch) until it is rolled out, has failed (its conditions go to the log), or the step's
timeout passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException

from cephalo_agent.kubernetes.manifests import (
    ROLLOUT_KINDS,
    Manifest,
    RolloutState,
    describe_conditions,
    parse_manifests,
    rollout_state,
)
from cephalo_agent.steprunner.errors import StepFailed
from cephalo_agent.steprunner.output import StepOutput

FIELD_MANAGER = "cephalo"
OBJECT = {200: "object", 201: "object"}


@dataclass(frozen=True)
class Cluster:
    url: str
    namespace: str = "default"
    token: str | None = None
    certificate_authority: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None
    skip_tls_verify: bool = False


@contextlib.asynccontextmanager
async def api_client(cluster: Cluster) -> AsyncIterator[ApiClient]:
    """A client for `cluster`; certificates go through 0600 files deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="cephalo-kube-") as scratch:
        configuration = Configuration(host=cluster.url.rstrip("/"))
        configuration.verify_ssl = not cluster.skip_tls_verify
        if cluster.token:
            configuration.api_key = {"BearerToken": cluster.token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
        for attribute, pem in (
            ("ssl_ca_cert", cluster.certificate_authority),
            ("cert_file", cluster.client_certificate),
            ("key_file", cluster.client_key),
        ):
            if pem:
                path = Path(scratch) / attribute
                path.write_text(pem)
                path.chmod(0o600)
                setattr(configuration, attribute, str(path))
        async with ApiClient(configuration) as client:
            yield client


async def deploy_yaml(
    cluster: Cluster,
    manifest_text: str,
    output: StepOutput,
    *,
    timeout_seconds: float,
    wait: bool = True,
) -> None:
    manifests = parse_manifests(manifest_text, cluster.namespace)
    output.info(f"Validated {len(manifests)} resource(s) against Kubernetes schemas.")
    async with api_client(cluster) as client:
        for manifest in manifests:
            await _apply(client, manifest)
            output.info(f"Applied {manifest.label} (server-side, field manager {FIELD_MANAGER}).")
        if not wait:
            return
        workloads = [m for m in manifests if m.kind in ROLLOUT_KINDS]
        try:
            async with asyncio.timeout(timeout_seconds):
                await asyncio.gather(*(_wait(client, m, output) for m in workloads))
        except TimeoutError:
            raise StepFailed(
                f"The rollout did not finish within {timeout_seconds:g} seconds."
            ) from None


async def _call(client: ApiClient, path: str, method: str, **options: Any) -> Any:
    try:
        data, _, _ = await client.call_api(
            path, method, auth_settings=["BearerToken"], response_types_map=OBJECT, **options
        )
    except ApiException as error:
        raise StepFailed(f"{method} {path} failed: HTTP {error.status} {_reason(error)}") from None
    except OSError as error:
        raise StepFailed(f"The cluster is unreachable: {error}") from None
    return data


def _reason(error: ApiException) -> str:
    with contextlib.suppress(ValueError, TypeError):
        return str(json.loads(error.body or "{}").get("message", error.reason))
    return str(error.reason)


async def _apply(client: ApiClient, manifest: Manifest) -> None:
    await _call(
        client,
        manifest.path(),
        "PATCH",
        query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        header_params={
            "Content-Type": "application/apply-patch+yaml",
            "Accept": "application/json",
        },
        body=manifest.document,
    )


async def _wait(client: ApiClient, manifest: Manifest, output: StepOutput) -> None:
    last_progress = None
    while True:
        resource = await _call(
            client, manifest.path(), "GET", header_params={"Accept": "application/json"}
        )
        state = rollout_state(manifest.kind, resource)
        last_progress = _report(manifest, state, last_progress, output)
        if _finished(manifest, state, resource, output):
            return
        version = (resource.get("metadata") or {}).get("resourceVersion", "")
        async for event in _watch(client, manifest, version):
            state = rollout_state(manifest.kind, event)
            last_progress = _report(manifest, state, last_progress, output)
            if _finished(manifest, state, event, output):
                return


def _report(manifest: Manifest, state: RolloutState, last: str | None, output: StepOutput) -> str:
    if state.progress != last:
        output.info(f"{manifest.label}: {state.progress}")
    return state.progress


def _finished(
    manifest: Manifest, state: RolloutState, resource: dict[str, Any], output: StepOutput
) -> bool:
    if state.failed:
        for condition in describe_conditions(resource):
            output.error(f"{manifest.label}: {condition}")
        raise StepFailed(f"The rollout of {manifest.label} failed.")
    if state.done:
        output.info(f"{manifest.label} is rolled out.")
    return state.done


async def _watch(
    client: ApiClient, manifest: Manifest, version: str
) -> AsyncIterator[dict[str, Any]]:
    """The workload's states from a watch, until the server ends it."""
    query = [("watch", "true"), ("fieldSelector", f"metadata.name={manifest.name}")]
    if version:
        query.append(("resourceVersion", version))
    try:
        response = await client.call_api(
            manifest.collection_path(),
            "GET",
            query_params=query,
            auth_settings=["BearerToken"],
            _preload_content=False,
        )
    except ApiException as error:
        raise StepFailed(f"Watching {manifest.label} failed: HTTP {error.status}") from None
    async with response:
        async for line in response.content:
            if not line.strip():
                continue
            event = json.loads(line)
            if event.get("type") == "ERROR":
                return
            resource = event.get("object") or {}
            if (
                event.get("type") in ("ADDED", "MODIFIED")
                and resource.get("metadata", {}).get("name") == manifest.name
            ):
                yield resource
