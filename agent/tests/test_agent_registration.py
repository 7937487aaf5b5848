"""Registration against a real HTTP server: trust on first use, or refuse a wrong pin."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cephalo_agent.config import AgentPaths, load_config
from cephalo_agent.registration import (
    API_KEY_HEADER,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_UNTRUSTED,
    RegistrationError,
    deregister,
    pin_server,
    register,
)
from cephalo_common.security.tls import CERT_FILE, thumbprint, write_identity


@dataclass
class FakeServer:
    """Records requests; answers registration like api-gateway's public API would."""

    url: str
    server_pem: str
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    reply_status: int = 201
    reply_override: dict[str, Any] | None = None

    def reply(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.reply_override is not None:
            return self.reply_status, self.reply_override
        return self.reply_status, {
            "id": "Machines-7",
            "name": body["name"],
            "thumbprint": thumbprint(body["certificate_pem"]),
            "server_certificate_pem": self.server_pem,
            "server_thumbprint": thumbprint(self.server_pem),
            "polling_endpoint": "wss://gateway.example:10943/poll",
        }


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FakeServer]:
    write_identity(tmp_path / "server", "server")
    fake = FakeServer(url="", server_pem=(tmp_path / "server" / CERT_FILE).read_text())

    class Handler(BaseHTTPRequestHandler):
        def _record(self, body: Any) -> None:
            fake.requests.append((self.command, self.path, dict(self.headers), body))

        def _send(self, status: int, body: dict[str, Any] | None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self._record(body)
            self._send(*fake.reply(body))

        def do_DELETE(self) -> None:
            self._record(None)
            self._send(204, None)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()


def _register(paths: AgentPaths, server: FakeServer, **kwargs: Any) -> Any:
    return register(
        paths,
        server_url=server.url,
        space="default",
        name="web-01",
        environments=["Production"],
        roles=["web"],
        api_key="API-KEY-1",
        **kwargs,
    )


def test_first_registration_trusts_and_pins_the_returned_server_certificate(
    paths: AgentPaths, server: FakeServer
) -> None:
    result = _register(paths, server)

    method, path, headers, body = server.requests[0]
    assert (method, path) == ("POST", "/api/v1/spaces/default/machines/register")
    assert headers[API_KEY_HEADER] == "API-KEY-1"
    assert body["environments"] == ["Production"] and body["roles"] == ["web"]
    assert body["mode"] == "polling" and body["name"] == "web-01"
    assert thumbprint(body["certificate_pem"]) == result.agent_thumbprint
    assert result.trusted_on_first_use
    config = load_config(paths)
    assert config.machine_id == "Machines-7"
    assert config.server_thumbprint == thumbprint(server.server_pem)
    assert config.polling_endpoint == "wss://gateway.example:10943/poll"
    assert paths.server_certificate.read_text() == server.server_pem
    assert paths.private_key.stat().st_mode & 0o777 == 0o600


def test_registration_with_a_matching_pin_is_not_trust_on_first_use(
    paths: AgentPaths, server: FakeServer
) -> None:
    pin_server(paths, thumbprint(server.server_pem).lower())

    result = _register(paths, server)

    assert not result.trusted_on_first_use
    assert load_config(paths).registered


def test_registration_is_refused_when_the_server_certificate_is_not_the_pinned_one(
    paths: AgentPaths, server: FakeServer
) -> None:
    pin_server(paths, "AB" * 32)

    with pytest.raises(RegistrationError, match="does not match the pinned") as refused:
        _register(paths, server)

    assert refused.value.exit_code == EXIT_UNTRUSTED
    assert not load_config(paths).registered
    assert not paths.server_certificate.exists()
    assert [r[0] for r in server.requests] == ["POST", "DELETE"]  # the refused record is undone


def test_server_problem_is_reported_with_its_title_and_detail(
    paths: AgentPaths, server: FakeServer
) -> None:
    server.reply_status = 422
    server.reply_override = {"title": "Invalid input", "detail": "unknown environment Prod"}

    with pytest.raises(RegistrationError) as refused:
        _register(paths, server)

    assert refused.value.exit_code == EXIT_REFUSED
    assert "Invalid input" in str(refused.value)
    assert "unknown environment Prod" in str(refused.value)


def test_unreachable_server_exits_with_code_three(paths: AgentPaths, server: FakeServer) -> None:
    server.url = "http://127.0.0.1:9/"

    with pytest.raises(RegistrationError) as refused:
        _register(paths, server)

    assert refused.value.exit_code == EXIT_UNREACHABLE


def test_deregister_deletes_the_machine_and_keeps_the_pin(
    paths: AgentPaths, server: FakeServer
) -> None:
    _register(paths, server)

    assert deregister(paths, api_key="API-KEY-1")

    method, path, headers, _ = server.requests[-1]
    assert (method, path) == ("DELETE", "/api/v1/spaces/default/machines/Machines-7")
    assert headers[API_KEY_HEADER] == "API-KEY-1"
    config = load_config(paths)
    assert not config.registered and config.polling_endpoint is None
    assert config.server_thumbprint == thumbprint(server.server_pem)
