"""CI webhooks: managing them (`/api/v1/webhooks`) and receiving them (`/api/v1/hooks/{id}`).

A hook acts as the service account it is bound to, so a delivery can never do more than
that account's API key could. A delivery is de-duplicated by its id in the same
transaction as its action: a replay is refused, while a delivery whose action failed on
a 5xx can be redelivered.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from cephalo_common.db.session import unit_of_work
from cephalo_common.errors import CephaloError, Conflict, Forbidden, Invalid, NotFound
from cephalo_common.ids import uuid7
from cephalo_gateway.authz import MAX_INSPECTED_BODY, PayloadTooLarge
from cephalo_gateway.db.models import Webhook as WebhookRow
from cephalo_gateway.db.repositories import Repositories
from cephalo_gateway.deps import GatewayDep, PrincipalDep, ReposDep
from cephalo_gateway.domain import audit, identity
from cephalo_gateway.domain import webhooks as hooks
from cephalo_gateway.domain.permissions import ObjectScope, Permission, is_allowed
from cephalo_gateway.octopus.backend import Backend, BadRequest
from cephalo_gateway.proxy import Gateway, request_id_of

router = APIRouter(tags=["webhooks"])
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    space: Name = Field(description="Space id or slug.")
    provider: hooks.Provider
    action: hooks.HookAction
    project: Name = Field(description="Project name, slug or id.")
    channel: Name | None = None
    environments: list[Name] = Field(
        default_factory=list, max_length=20, description="deploy-release: where to deploy."
    )
    events: list[Annotated[str, StringConstraints(max_length=100)]] | None = Field(
        None, max_length=20, description="Events that act; default: the provider's usual ones."
    )
    version_template: str | None = Field(
        None,
        max_length=500,
        description="E.g. `1.0.{workflow_run.run_number}` or `{release.tag_name}`; None "
        "uses the tag for tag/release events and the project's template otherwise.",
    )
    strip_v_prefix: bool = True
    service_account_id: uuid.UUID


class Webhook(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    space_id: uuid.UUID
    provider: str
    action: str
    project: str
    channel: str | None
    environments: list[str]
    events: list[str]
    version_template: str | None
    strip_v_prefix: bool
    service_account_id: uuid.UUID
    is_active: bool


class WebhookCreated(Webhook):
    url: str
    secret: str = Field(description="Shown once: configure it as the hook's secret in CI.")


def _may_manage(principal: PrincipalDep, space_id: uuid.UUID) -> None:
    if not is_allowed(principal.grants, Permission.WEBHOOK_EDIT, ObjectScope(space_id=space_id)):
        raise Forbidden("managing webhooks needs WebhookEdit in the space")


@router.post("/api/v1/webhooks", status_code=201)
async def create_webhook(
    body: WebhookCreate,
    request: Request,
    repos: ReposDep,
    principal: PrincipalDep,
    gateway: GatewayDep,
) -> WebhookCreated:
    space_id = await gateway.spaces.space_id(body.space, request_id=request_id_of(request))
    _may_manage(principal, space_id)
    account = await repos.users.find(body.service_account_id)
    if account is None or not account.is_service_account:
        raise Invalid("service_account_id must name a service account")
    bound = await identity.principal_of(repos, account, identity.AuthMethod.WEBHOOK)
    if bound.is_administrator and not principal.is_administrator:
        raise Forbidden("only administrators may bind a hook to an administrator account")
    if body.action is hooks.HookAction.DEPLOY_RELEASE and not body.environments:
        raise Invalid("a deploy-release hook needs at least one environment")
    secret = hooks.new_secret(body.provider)
    hook_id = uuid7()
    row = await repos.webhooks.add(
        WebhookRow(
            id=hook_id,
            name=body.name,
            space_id=space_id,
            provider=body.provider.value,
            action=body.action.value,
            project=body.project,
            channel=body.channel,
            environments=body.environments,
            events=body.events or list(hooks.DEFAULT_EVENTS[body.provider]),
            version_template=body.version_template,
            strip_v_prefix=body.strip_v_prefix,
            service_account_id=account.id,
            secret_ciphertext=gateway.security.seal(secret, hook_id.bytes),
            is_active=True,
        )
    )
    request.state.audit_space_id = space_id
    rendered = Webhook.model_validate(row).model_dump()
    return WebhookCreated(**rendered, url=f"/api/v1/hooks/{row.id}", secret=secret)


@router.get("/api/v1/webhooks")
async def list_webhooks(repos: ReposDep, principal: PrincipalDep) -> list[Webhook]:
    """The hooks in the spaces where the caller may manage them (secrets never shown)."""
    return [
        Webhook.model_validate(row)
        for row in await repos.webhooks.list_all()
        if is_allowed(principal.grants, Permission.WEBHOOK_VIEW, ObjectScope(space_id=row.space_id))
    ]


@router.delete("/api/v1/webhooks/{hook_id}", status_code=204)
async def delete_webhook(hook_id: uuid.UUID, repos: ReposDep, principal: PrincipalDep) -> Response:
    row = await repos.webhooks.get(hook_id)
    _may_manage(principal, row.space_id)
    await repos.session.delete(row)
    await repos.session.flush()
    return Response(status_code=204)


# Receiving ------------------------------------------------------------------------------


def _problem(status: int, detail: str) -> JSONResponse:
    titles = {400: "Bad request", 401: "Unauthorized", 404: "Not found", 409: "Conflict"}
    title = titles.get(status, "Error")
    return JSONResponse(
        {
            "type": "https://cephalo.dev/problems/" + title.lower().replace(" ", "-"),
            "title": title,
            "status": status,
            "detail": detail,
        },
        status_code=status,
        media_type="application/problem+json",
    )


async def _raw_body(request: Request) -> bytes:
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_INSPECTED_BODY:
            raise PayloadTooLarge(f"a delivery may be at most {MAX_INSPECTED_BODY} bytes")
    return bytes(received)


@router.post("/api/v1/hooks/{hook_id}", responses={401: {}, 404: {}, 409: {}, 429: {}})
async def receive(hook_id: str, request: Request, gateway: GatewayDep) -> Response:
    """A CI delivery. 401: bad or missing signature, stale timestamp; 409: a replayed
    delivery id; 202: accepted but nothing to do for this event; 201: acted."""
    security = gateway.security
    limited = security.limits.webhooks.take(f"hook:{hook_id}")
    if not limited.allowed:
        response = _problem(429, "too many deliveries for this hook")
        response.headers["Retry-After"] = str(limited.retry_after_seconds)
        return response
    request.state.audit_category = audit.Category.WEBHOOK_REJECTED
    try:
        hook_uuid = uuid.UUID(hook_id)
    except ValueError:
        return _problem(404, "no such webhook")
    body = await _raw_body(request)
    async with unit_of_work(gateway.sessionmaker) as session:
        repos = Repositories(session)
        hook = await repos.webhooks.find(hook_uuid)
        if hook is None or not hook.is_active:
            return _problem(404, "no such webhook")
        request.state.audit_space_id = hook.space_id
        provider = hooks.Provider(hook.provider)
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            delivery = hooks.verify(
                provider,
                headers,
                body,
                security.unseal(hook.secret_ciphertext, hook.id.bytes),
                now=time.time(),
                max_age_seconds=security.settings.webhook_max_age_seconds,
            )
        except hooks.Rejected as rejected:
            request.state.audit_detail = rejected.reason
            return _problem(rejected.status, rejected.reason)
        account = await repos.users.get(hook.service_account_id)
        request.state.audit_actor = account.username
        request.state.audit_user_id = account.id
        if not account.is_active:
            return _problem(401, "the hook's service account is disabled")
        if not await repos.webhooks.record_delivery(hook.id, delivery.delivery_id, delivery.event):
            request.state.audit_detail = f"replayed delivery {delivery.delivery_id}"
            return _problem(409, f"delivery {delivery.delivery_id!r} was already received")
        principal = await identity.principal_of(repos, account, identity.AuthMethod.WEBHOOK)
        outcome = await _act(gateway, request, hook, provider, delivery, body, principal)
        await repos.webhooks.set_outcome(hook.id, delivery.delivery_id, json.dumps(outcome[1]))
        request.state.audit_category = audit.Category.WEBHOOK_DELIVERED
        request.state.audit_detail = f"delivery {delivery.delivery_id} ({delivery.event})"
        return JSONResponse(outcome[1], status_code=outcome[0])


async def _act(
    gateway: Gateway,
    request: Request,
    hook: WebhookRow,
    provider: hooks.Provider,
    delivery: hooks.Delivery,
    body: bytes,
    principal: identity.Principal,
) -> tuple[int, dict[str, Any]]:
    """(status, answer); 4xx outcomes are final (recorded), 5xx roll the delivery back."""
    try:
        payload = json.loads(body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return 400, {"status": "rejected", "detail": "the payload is not JSON"}
    if not hooks.should_act(provider, delivery.event, payload, tuple(hook.events)):
        return 202, {"status": "ignored", "detail": f"event {delivery.event!r} does not act"}
    try:
        version = hooks.release_version(
            provider, delivery.event, payload, hook.version_template, strip_v=hook.strip_v_prefix
        )
        api = Backend(gateway, principal, request_id_of(request))
        if hook.action == hooks.HookAction.CREATE_RELEASE.value:
            return await _create_release(api, hook, version)
        return await _deploy(api, hook, version)
    except hooks.Rejected as rejected:
        return rejected.status, {"status": "rejected", "detail": rejected.reason}
    except (BadRequest, NotFound, Forbidden, Invalid, Conflict) as error:
        status = 403 if isinstance(error, Forbidden) else 422
        return status, {"status": "rejected", "detail": error.detail}
    except CephaloError:
        raise


async def _create_release(
    api: Backend, hook: WebhookRow, version: str | None
) -> tuple[int, dict[str, Any]]:
    project = await api.project(hook.space_id, hook.project)
    command: dict[str, Any] = {"release_notes": ""}
    if version:
        command["version"] = version
    if hook.channel:
        command["channel"] = hook.channel
    status, created = await api.create_release(hook.space_id, project, command)
    if status == 409:
        return 200, {"status": "exists", "version": version}
    if status >= 400 or not isinstance(created, dict):
        detail = created.get("detail") if isinstance(created, dict) else None
        return 422, {"status": "rejected", "detail": detail or f"refused ({status})"}
    return 201, {
        "status": "created",
        "release_id": str(created["id"]),
        "version": created["version"],
    }


async def _deploy(
    api: Backend, hook: WebhookRow, version: str | None
) -> tuple[int, dict[str, Any]]:
    project = await api.project(hook.space_id, hook.project)
    if version:
        release = await api.release(hook.space_id, project, version)
    else:
        releases = await api.releases(hook.space_id, str(project["id"]))
        if not releases:
            raise BadRequest(f"project '{project['name']}' has no release to deploy")
        release = max(releases, key=lambda r: str(r.get("created_at", "")))
    environments = [await api.environment(hook.space_id, name) for name in hook.environments]
    for environment in environments:
        await api.authorize_deployment(hook.space_id, str(release["id"]), str(environment["id"]))
    created = []
    for environment in environments:
        deployment = await api.create_deployment(
            hook.space_id,
            {"release_id": str(release["id"]), "environment_id": str(environment["id"])},
        )
        created.append(str(deployment["id"]))
    return 201, {"status": "deployed", "version": release["version"], "deployment_ids": created}
