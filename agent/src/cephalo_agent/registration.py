"""Registering the agent with a Cephalo server, and pinning that server's certificate.

Registration is the one moment the agent learns whom to trust. If an operator pinned the
server's thumbprint beforehand (`configure --trust`), a server presenting any other certificate
is refused; otherwise the returned certificate is trusted on first use and the caller announces
it loudly so the thumbprint can be checked out of band.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from cephalo_agent.config import (
    AgentConfig,
    AgentPaths,
    atomic_write,
    load_config,
    save_config,
)
from cephalo_common.agent_protocol import DEFAULT_LISTENING_PORT
from cephalo_common.security.tls import thumbprint, thumbprints_equal, write_identity

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_UNTRUSTED = 4

API_KEY_HEADER = "X-Cephalo-Api-Key"  # pragma: allowlist secret
IDENTITY_NAME = "cephalo-agent"
MODES = ("polling", "listening")
_THUMBPRINT = re.compile(r"[0-9A-F]{64}")


class RegistrationError(Exception):
    """A registration step failed; `exit_code` is what the CLI exits with."""

    def __init__(self, message: str, exit_code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class RegistrationResponse(BaseModel):
    """The 201 body of `POST /api/v1/spaces/{space}/{machines|workers}/register`."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    thumbprint: str
    server_certificate_pem: str
    server_thumbprint: str
    polling_endpoint: str | None = None


@dataclass(frozen=True)
class RegistrationResult:
    config: AgentConfig
    agent_thumbprint: str
    server_thumbprint: str
    trusted_on_first_use: bool


def normalise_thumbprint(value: str) -> str:
    """Accept `ab:cd:...` or spaced forms; return 64 upper-case hex digits or raise ValueError."""
    cleaned = re.sub(r"[\s:]", "", value).upper()
    if not _THUMBPRINT.fullmatch(cleaned):
        raise ValueError("a thumbprint is the 64 hex digits of a SHA-256 digest")
    return cleaned


def ensure_identity(paths: AgentPaths) -> str:
    """Create the agent's certificate and 0600 key if missing; return its thumbprint."""
    paths.ensure()
    result = write_identity(paths.root, IDENTITY_NAME)
    paths.private_key.chmod(0o600)
    return result


def pin_server(paths: AgentPaths, server_thumbprint: str | None) -> AgentConfig:
    """`configure --trust` (or `--reset-trust` with None): the thumbprint registration must see.

    A saved server certificate that does not match the new pin is removed, so the agent can
    never keep talking to a server it no longer trusts.
    """
    config = load_config(paths)
    pinned = normalise_thumbprint(server_thumbprint) if server_thumbprint else None
    if paths.server_certificate.exists():
        saved = thumbprint(paths.server_certificate.read_bytes())
        if pinned is None or not thumbprints_equal(saved, pinned):
            paths.server_certificate.unlink()
    config = config.model_copy(update={"server_thumbprint": pinned})
    save_config(paths, config)
    return config


def listening_address(listening_url: str | None, listen_port: int | None) -> tuple[str, int]:
    """The URL the server dials and the port to bind: each defaults from the other."""
    if listening_url is None:
        port = listen_port or DEFAULT_LISTENING_PORT
        return f"https://{socket.getfqdn()}:{port}", port
    parts = urlsplit(listening_url)
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
        raise RegistrationError(
            f"--listen-url must look like https://host:{DEFAULT_LISTENING_PORT}, "
            f"not {listening_url!r}",
            EXIT_USAGE,
        )
    try:
        url_port = parts.port or 443
    except ValueError as exc:
        raise RegistrationError(f"invalid port in {listening_url!r}", EXIT_USAGE) from exc
    return listening_url.rstrip("/"), listen_port or url_port


def register(
    paths: AgentPaths,
    *,
    server_url: str,
    space: str,
    name: str,
    environments: list[str],
    roles: list[str],
    mode: str = "polling",
    api_key: str | None = None,
    timeout: float = 30.0,
    listening_url: str | None = None,
    listen_host: str = "0.0.0.0",
    listen_port: int | None = None,
    worker_pools: list[str] | None = None,
) -> RegistrationResult:
    """Register this agent as a deployment target (or, with `worker_pools`, as a worker) and
    pin the server certificate it returns.

    Polling agents dial the server; listening agents are dialled at `listening_url` and bind
    `listen_host:listen_port` when they run.
    """
    if mode not in MODES:
        raise RegistrationError(f"unknown mode {mode!r}; use polling or listening", EXIT_USAGE)
    listening = None
    if mode == "listening":
        listening = listening_address(listening_url, listen_port)
    kind = "worker" if worker_pools else "target"
    config = load_config(paths)
    if config.registered:
        raise RegistrationError(
            f"already registered as {config.machine_id} with {config.server_url}; "
            "run `deregister` first"
        )
    agent_thumbprint = ensure_identity(paths)
    base = server_url.rstrip("/")
    collection = "workers" if kind == "worker" else "machines"
    url = f"{base}/api/v1/spaces/{quote(space, safe='')}/{collection}/register"
    body: dict[str, Any] = {
        "name": name,
        "certificate_pem": paths.certificate.read_text(),
        "mode": mode,
    }
    if kind == "worker":
        body["worker_pools"] = worker_pools
    else:
        body["environments"] = environments
        body["roles"] = roles
    if listening is not None:
        body["listening_url"] = listening[0]
    with _client(api_key, timeout) as client:
        response = _call(client, "POST", url, body)
        _raise_for_problem(response, "registration")
        try:
            reply = RegistrationResponse.model_validate_json(response.content)
            actual = thumbprint(reply.server_certificate_pem)
        except (ValidationError, ValueError) as exc:
            raise RegistrationError(f"the server's registration reply is invalid: {exc}") from exc
        machine_url = f"{base}/api/v1/spaces/{quote(space, safe='')}/{collection}/"
        machine_url += quote(reply.id, safe="")
        problem = _trust_problem(config, reply, actual, agent_thumbprint)
        if problem is not None:
            _undo(client, machine_url)
            raise RegistrationError(problem, EXIT_UNTRUSTED)
        if mode == "polling" and not reply.polling_endpoint:
            _undo(client, machine_url)
            raise RegistrationError("the server did not return a polling endpoint")
    atomic_write(paths.server_certificate, reply.server_certificate_pem.encode(), mode=0o644)
    new_config = config.model_copy(
        update={
            "server_url": base,
            "space": space,
            "machine_id": reply.id,
            "machine_name": reply.name,
            "server_thumbprint": actual,
            "mode": mode,
            "polling_endpoint": reply.polling_endpoint if mode == "polling" else None,
            "listening_url": listening[0] if listening else None,
            "listen_host": listen_host,
            "listen_port": listening[1] if listening else None,
            "kind": kind,
        }
    )
    save_config(paths, new_config)
    log.info("registered as %s (%s) with %s", reply.name, reply.id, base)
    return RegistrationResult(
        config=new_config,
        agent_thumbprint=agent_thumbprint,
        server_thumbprint=actual,
        trusted_on_first_use=config.server_thumbprint is None,
    )


def deregister(paths: AgentPaths, *, api_key: str | None = None, timeout: float = 30.0) -> bool:
    """Remove this machine from the server and forget the registration (the pin stays).

    Returns False when the server no longer knew the machine (404), True otherwise.
    """
    config = load_config(paths)
    if not config.registered or config.server_url is None or config.space is None:
        raise RegistrationError("this agent is not registered")
    assert config.machine_id is not None
    space, machine = quote(config.space, safe=""), quote(config.machine_id, safe="")
    collection = "workers" if config.kind == "worker" else "machines"
    url = f"{config.server_url}/api/v1/spaces/{space}/{collection}/{machine}"
    with _client(api_key, timeout) as client:
        response = _call(client, "DELETE", url)
    known = response.status_code != 404
    if known:
        _raise_for_problem(response, "deregistration")
    cleared = dict.fromkeys(
        (
            "server_url",
            "space",
            "machine_id",
            "machine_name",
            "mode",
            "polling_endpoint",
            "listening_url",
            "listen_port",
        )
    )
    save_config(paths, config.model_copy(update=cleared))
    return known


async def introduce(paths: AgentPaths, config: AgentConfig, *, timeout: float = 10.0) -> None:
    """Ask the server to list this certificate as a pending registration (it refused us).

    An operator compares the thumbprint with `show-thumbprint` and approves it, which makes
    this agent a machine again; until then every connection is refused.
    """
    import httpx

    if config.server_url is None or config.space is None:
        raise RegistrationError("this agent has never registered: it knows no server")
    url = f"{config.server_url}/api/v1/spaces/{quote(config.space, safe='')}/machines/pending"
    body = {
        "name": config.machine_name or socket.gethostname(),
        "certificate_pem": paths.certificate.read_text(),
        "mode": config.mode or "polling",
        "kind": config.kind,
        "listening_url": config.listening_url,
    }
    api_key = os.environ.get("CEPHALO_API_KEY")
    headers = {API_KEY_HEADER: api_key} if api_key else {}
    async with httpx.AsyncClient(timeout=timeout, headers=headers) as client:
        response = await client.post(url, json=body)
    if response.status_code not in (200, 201, 202):
        raise RegistrationError(f"the server answered HTTP {response.status_code}")


def _trust_problem(
    config: AgentConfig, reply: RegistrationResponse, actual: str, agent_thumbprint: str
) -> str | None:
    if not thumbprints_equal(actual, reply.server_thumbprint):
        return (
            f"the server says its thumbprint is {reply.server_thumbprint} but the certificate "
            f"it sent has {actual}; refusing to trust it"
        )
    if config.server_thumbprint and not thumbprints_equal(actual, config.server_thumbprint):
        return (
            f"the server's certificate thumbprint {actual} does not match the pinned "
            f"{config.server_thumbprint}; refusing to register (if the server really changed, "
            "run `configure --trust NEW_THUMBPRINT` after checking it)"
        )
    if not thumbprints_equal(reply.thumbprint, agent_thumbprint):
        return (
            f"the server recorded thumbprint {reply.thumbprint} for this agent, but ours is "
            f"{agent_thumbprint}; refusing the registration"
        )
    return None


def _client(api_key: str | None, timeout: float) -> httpx.Client:
    # Imported here: httpx drags in its CLI's dependencies (about 0.5 s), and only
    # register/deregister need it.
    import httpx

    headers = {API_KEY_HEADER: api_key} if api_key else {}
    return httpx.Client(headers=headers, timeout=timeout)


def _call(
    client: httpx.Client, method: str, url: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    import httpx

    try:
        return client.request(method, url, json=body)
    except httpx.TransportError as exc:
        raise RegistrationError(
            f"cannot reach the server at {url}: {exc}", EXIT_UNREACHABLE
        ) from exc


def _undo(client: httpx.Client, url: str) -> None:
    """Best effort: do not leave a refused registration behind on the server."""
    import httpx

    try:
        client.delete(url)
    except httpx.HTTPError as exc:
        log.warning("could not remove the refused registration at %s: %s", url, exc)


def _raise_for_problem(response: httpx.Response, action: str) -> None:
    """Non-2xx → RegistrationError from the RFC 9457 problem's `title` and `detail`."""
    if response.is_success:
        return
    title, detail = response.reason_phrase, ""
    try:
        problem = response.json()
    except ValueError:
        detail = response.text.strip()[:500]
    else:
        if isinstance(problem, dict):
            title = str(problem.get("title") or title)
            detail = str(problem.get("detail") or "")
    message = f"{action} failed: HTTP {response.status_code} {title}"
    raise RegistrationError(f"{message}: {detail}" if detail else message, EXIT_REFUSED)
