"""SSH targets as machines: registration with a pinned host key, re-pinning, the audit trail.

An SSH target is a `Machine` of mode `ssh` (it has no agent certificate, so its thumbprint is
a placeholder no TLS client can present) with one `SshEndpoint` row: address, the account
sealed with the gateway's account key, and the host key pinned at registration. Every
pinning, every refused connection (a changed host key) and every deliberate re-pinning is a
row of `ssh_host_key_events`; a refusal is also announced as `target.host-key-changed`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from cephalo_agent_gateway.db.models import Machine, SshEndpoint, SshHostKeyEvent
from cephalo_agent_gateway.db.repositories import SSH, TARGET, Repositories
from cephalo_agent_gateway.domain.machines import (
    EnvironmentDirectory,
    get_machine,
    resolve_environments,
)
from cephalo_agent_gateway.domain.ssh_accounts import AccountCipher, SshAccount
from cephalo_agent_gateway.domain.ssh_targets import (
    SshUnavailable,
    check_private_key,
    fingerprint,
    same_fingerprint,
)
from cephalo_agent_gateway.events import publish
from cephalo_agent_gateway.events.contracts import TargetHostKeyChangedV1
from cephalo_common.errors import Conflict, Invalid, NotFound, Unavailable
from cephalo_common.ids import utc_now, uuid7

SSH_MODE = SSH
PINNED = "Pinned"
REFUSED = "Refused"
REPINNED = "Repinned"
NO_ACCOUNT_KEY = (
    "SSH targets need an account key: set CEPHALO_AGENT_GATEWAY_SSH_ACCOUNT_KEY (base64 of "
    "32 random bytes) or CEPHALO_AGENT_GATEWAY_SSH_ACCOUNT_KEY_FILE on every gateway replica"
)

CaptureHostKey = Callable[[str, int], Awaitable[str]]


@dataclass(frozen=True)
class SshRegistration:
    name: str
    environments: Sequence[str]
    host: str
    port: int
    account: SshAccount
    roles: Sequence[str] = ()
    host_key_fingerprint: str | None = None


def _invalid(field: str, message: str) -> Invalid:
    return Invalid(message, errors=[{"field": f"body.{field}", "message": message}])


def require_cipher(cipher: AccountCipher | None) -> AccountCipher:
    if cipher is None:
        raise Unavailable(NO_ACCOUNT_KEY)
    return cipher


async def _capture(capture: CaptureHostKey, host: str, port: int) -> str:
    try:
        return await capture(host, port)
    except SshUnavailable as error:
        raise _invalid("host", str(error)) from None


def _check_expected(expected: str | None, presented: str, field: str) -> None:
    if expected is not None and not same_fingerprint(expected, fingerprint(presented)):
        raise _invalid(
            field,
            f"the host presented the key {fingerprint(presented)}, not the expected "
            f"{expected.strip()}; nothing was pinned",
        )


async def register_ssh_target(
    repos: Repositories,
    directory: EnvironmentDirectory,
    cipher: AccountCipher | None,
    space_id: uuid.UUID,
    registration: SshRegistration,
    capture: CaptureHostKey,
) -> tuple[Machine, SshEndpoint]:
    """Add the target with its host key pinned (trust on first use unless a fingerprint is
    expected, which must then match what the host presents)."""
    sealer = require_cipher(cipher)
    account = registration.account
    if account.private_key is not None:
        try:
            check_private_key(account.private_key, account.passphrase)
        except ValueError as error:
            raise _invalid("private_key", str(error)) from None
    if await repos.machines.find_by_name(space_id, registration.name) is not None:
        raise Conflict(f"a machine named {registration.name!r} already exists in this space")
    environment_ids = await resolve_environments(directory, space_id, registration.environments)
    host_key = await _capture(capture, registration.host, registration.port)
    _check_expected(registration.host_key_fingerprint, host_key, "host_key_fingerprint")
    machine_id = uuid7()
    machine = await repos.machines.insert(
        Machine(
            id=machine_id,
            space_id=space_id,
            name=registration.name,
            thumbprint=f"SSH-{machine_id.hex.upper()}",
            certificate_pem="",
            mode=SSH_MODE,
            uri=f"ssh://{account.username}@{_netloc(registration.host, registration.port)}",
            kind=TARGET,
            environment_ids=[str(id) for id in environment_ids],
            roles=_unique(registration.roles),
        )
    )
    endpoint = SshEndpoint(
        machine_id=machine.id,
        host=registration.host,
        port=registration.port,
        username=account.username,
        auth="password" if account.password is not None else "private_key",
        sealed_account=sealer.seal(account, context=str(machine.id)),
        host_key=host_key,
        host_key_fingerprint=fingerprint(host_key),
        host_key_pinned_at=utc_now(),
    )
    repos.session.add(endpoint)
    _audit(repos, machine, PINNED, pinned=None, presented=host_key)
    await repos.session.flush()
    publish.target_registered(repos.session, machine)
    return machine, endpoint


async def get_ssh_target(
    repos: Repositories, space_id: uuid.UUID, machine_id: uuid.UUID
) -> tuple[Machine, SshEndpoint]:
    machine = await get_machine(repos, space_id, machine_id)
    endpoint = await repos.session.get(SshEndpoint, machine.id)
    if endpoint is None:
        raise NotFound(f"machine {machine_id} is not an SSH target")
    return machine, endpoint


async def repin_host_key(
    repos: Repositories,
    space_id: uuid.UUID,
    machine_id: uuid.UUID,
    expected_fingerprint: str,
    capture: CaptureHostKey,
) -> tuple[Machine, SshEndpoint]:
    """Pin the key the host presents now, after a deliberate change: only when it is the one
    the operator expects (compared out of band), never blindly."""
    machine, endpoint = await get_ssh_target(repos, space_id, machine_id)
    host_key = await _capture(capture, endpoint.host, endpoint.port)
    _check_expected(expected_fingerprint, host_key, "fingerprint")
    previous = endpoint.host_key_fingerprint
    endpoint.host_key = host_key
    endpoint.host_key_fingerprint = fingerprint(host_key)
    endpoint.host_key_pinned_at = utc_now()
    _audit(repos, machine, REPINNED, pinned=previous, presented=host_key)
    await repos.session.flush()
    return machine, endpoint


async def record_refusal(
    repos: Repositories, machine_id: uuid.UUID, presented: str
) -> SshHostKeyEvent | None:
    """A connection was refused because the host key changed: audit it and announce it."""
    machine = await repos.machines.find(machine_id)
    endpoint = await repos.session.get(SshEndpoint, machine_id)
    if machine is None or endpoint is None:
        return None
    event = _audit(
        repos, machine, REFUSED, pinned=endpoint.host_key_fingerprint, presented=presented
    )
    await repos.session.flush()
    publish.target_host_key_changed(
        repos.session,
        machine,
        TargetHostKeyChangedV1(
            machine_id=str(machine.id),
            name=machine.name,
            host=endpoint.host,
            port=endpoint.port,
            pinned_fingerprint=endpoint.host_key_fingerprint,
            presented_fingerprint=event.presented_fingerprint,
            occurred_at=utc_now().isoformat(),
        ),
    )
    return event


async def host_key_history(
    repos: Repositories, space_id: uuid.UUID, machine_id: uuid.UUID, limit: int
) -> Sequence[SshHostKeyEvent]:
    machine, _ = await get_ssh_target(repos, space_id, machine_id)
    return await repos.ssh.host_key_events(machine.id, limit)


def _audit(
    repos: Repositories, machine: Machine, action: str, *, pinned: str | None, presented: str
) -> SshHostKeyEvent:
    event = SshHostKeyEvent(
        id=uuid7(),
        space_id=machine.space_id,
        machine_id=machine.id,
        action=action,
        pinned_fingerprint=pinned,
        presented_fingerprint=_fingerprint_or_none(presented),
        presented_key=presented or None,
    )
    repos.session.add(event)
    return event


def _fingerprint_or_none(public_key: str) -> str | None:
    try:
        return fingerprint(public_key) if public_key else None
    except (ValueError, TypeError):
        return None


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _unique(values: Sequence[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(value.strip(), None)
    return [value for value in seen if value]
