"""The runner reads the package step as release-service's deployment process writes it
(`cephalo.package`, snake_case settings) and evaluates `#{…}` in inline scripts.

The runner runs as a real subprocess; the package comes from a tiny HTTP server on loopback.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

SECRET = "hunter2-secret"


@pytest.fixture
def served() -> Iterator[dict[str, bytes]]:
    files: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    files["__port__"] = str(server.server_address[1]).encode()
    yield files
    server.shutdown()
    server.server_close()


def run(action: dict[str, Any], tmp_path: Path, home: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "action.json"
    path.write_text(json.dumps({**action, "home": str(home)}))
    path.chmod(0o600)
    return subprocess.run(
        [sys.executable, "-m", "cephalo_agent.steprunner", "--action", str(path), "--consume"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )


def package(served: dict[str, bytes], name: str, files: dict[str, str]) -> dict[str, Any]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for entry, text in files.items():
            archive.writestr(entry, text)
    data = buffer.getvalue()
    served[name] = data
    port = served["__port__"].decode()
    return {
        "package_id": "Shop",
        "version": "1.0.0",
        "url": f"http://127.0.0.1:{port}/{name}",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }


def test_release_services_package_step_settings_are_honoured(
    tmp_path: Path, served: dict[str, bytes]
) -> None:
    ref = package(
        served,
        "shop.zip",
        {"appsettings.json": '{"Port": 80, "Name": "x"}', "Deploy.sh": "echo DEPLOYED\n"},
    )
    action = {
        "action_type": "cephalo.package",
        "variables": {"Port": "8080", "Octopus.Environment.Name": "Test"},
        "properties": {
            "package_reference": "",
            "custom_installation_directory": None,
            "structured_variables_targets": "appsettings.json",
            "skip_if_already_installed": True,
        },
        "packages": [ref],
    }
    home = tmp_path / "home"
    first = run(action, tmp_path, home)
    assert first.returncode == 0, first.stderr
    [folder] = (home / "apps").glob("*/Shop/1.0.0")
    assert json.loads((folder / "appsettings.json").read_text()) == {"Port": 8080, "Name": "x"}
    assert "DEPLOYED" in first.stdout
    again = run(action, tmp_path, home)
    assert again.returncode == 0, again.stderr
    assert "DEPLOYED" not in again.stdout and "already installed" in again.stdout


def test_an_inline_script_has_its_templates_evaluated_and_secrets_masked(tmp_path: Path) -> None:
    body = (
        'echo "color=#{Cephalo.Action[Step 1].Output.Color}"\n'
        'echo "upper=#{Name | ToUpper}"\n'
        'echo "secret=#{Password}"\n'
        'echo "missing=#{Nope}"\n'
    )
    action = {
        "action_type": "cephalo.script",
        "script_body": body,
        "variables": {
            "Cephalo.Action[Step 1].Output.Color": "blue",
            "Name": "shop",
            "Password": SECRET,
        },
        "sensitive_variables": ["Password"],
    }
    done = run(action, tmp_path, tmp_path / "home")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "color=blue" in lines and "upper=SHOP" in lines
    assert "secret=********" in lines
    assert "missing=#{Nope}" in lines
    assert SECRET not in done.stdout + done.stderr
    assert "Left as written in the script: #{Nope}" in lines
