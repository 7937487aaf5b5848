"""The CLI's own logic without a server: package selection, octo flags, config, exit codes."""

from __future__ import annotations

import http.server
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import typer.main

from cephalo_cli.client import problem_message
from cephalo_cli.commands.agent import Mode, install_commands
from cephalo_cli.commands.octo import timespan, translate
from cephalo_cli.config import Config, load_file, resolve, save_file
from cephalo_cli.errors import UsageError
from cephalo_cli.main import app, normalize, run
from cephalo_cli.schemas import SCHEMAS, schema
from cephalo_cli.selection import PackageSpec, Reference, select
from cephalo_common.embedded import free_port

STEPS = [
    {
        "name": "Web",
        "actions": [{"name": "Web", "packages": [{"name": "", "package_id": "Acme.Web"}]}],
    },
    {
        "name": "Db",
        "actions": [
            {
                "name": "Db",
                "packages": [
                    {"name": "", "package_id": "Acme.Db"},
                    {"name": "tools", "package_id": "Acme.Tools"},
                ],
            }
        ],
    },
]


def never(reference: Reference, version_range: str, tag: str) -> str:
    raise AssertionError(f"the feed was asked about {reference}")


def versions(selected: list[dict[str, str]]) -> dict[str, str]:
    return {f"{p['action_name']}:{p['package_reference']}": p["version"] for p in selected}


def test_a_step_name_wins_over_a_package_id_and_the_default_fills_the_rest() -> None:
    specs = [PackageSpec.parse("Acme.Web:9.9.9"), PackageSpec.parse("web:1.2.0")]
    assert versions(select(STEPS, specs, "0.5.0", never)) == {
        "Web:": "1.2.0",
        "Db:": "0.5.0",
        "Db:tools": "0.5.0",
    }


def test_step_reference_version_and_wildcards_pick_single_references() -> None:
    specs = [PackageSpec.parse("Db:tools:3.0.0"), PackageSpec.parse("*:1.0.0")]
    assert versions(select(STEPS, specs, None, never)) == {
        "Web:": "1.0.0",
        "Db:": "1.0.0",
        "Db:tools": "3.0.0",
    }


def test_unnamed_packages_get_the_newest_version_the_channel_rule_allows() -> None:
    asked: list[tuple[str, str, str]] = []

    def newest(reference: Reference, version_range: str, tag: str) -> str:
        asked.append((reference.package_id, version_range, tag))
        return "2.0.0"

    rules = [
        {"action_packages": ["Db:tools"], "version_range": "[3.0,4.0)", "tag": "^$"},
        {"action_packages": [], "version_range": "[2.0,)", "tag": ""},
    ]
    selected = select(STEPS, [PackageSpec.parse("Acme.Web:1.0.0")], None, newest, rules)
    assert versions(selected)["Web:"] == "1.0.0"
    assert asked == [("Acme.Db", "[2.0,)", ""), ("Acme.Tools", "[3.0,4.0)", "^$")]


@pytest.mark.parametrize("text", ["Web", "Web:", ":1.0", "a:b:c:d", "Db::"])
def test_a_malformed_package_spec_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="--package"):
        PackageSpec.parse(text)


def test_a_package_spec_naming_nothing_in_the_process_is_refused() -> None:
    with pytest.raises(UsageError, match=r"Acme\.Nope"):
        select(STEPS, [PackageSpec.parse("Acme.Nope:1.0.0")], "1.0.0", never)


def test_octo_flags_are_matched_case_insensitively_with_either_value_syntax() -> None:
    argv = [
        "deploy-release",
        "--project=HelloWorld",
        "--releaseNumber",
        "1.0.0",
        "--deployto=Production",
        "--DeployTo",
        "Staging",
        "--apiKey",
        "API-XYZ",
        "--waitForDeployment",
        "--deploymentTimeout=00:20:00",
        "--debug",
        "--logLevel",
        "verbose",
        "--ignoreSslErrors",
    ]
    assert translate(argv) == [
        "deploy-release",
        "--project=HelloWorld",
        "--version",
        "1.0.0",
        "--deploy-to=Production",
        "--deploy-to",
        "Staging",
        "--api-key",
        "API-XYZ",
        "--wait-for-deployment",
        "--deployment-timeout=00:20:00",
    ]


def test_octo_flags_cephalo_cannot_honour_are_refused_by_name() -> None:
    with pytest.raises(UsageError, match="--tenant"):
        translate(["deploy-release", "--tenant", "Acme"])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("600", 600), ("00:10:00", 600), ("01:02:03", 3723), ("1.00:00:01", 86401), ("00:05", 300)],
)
def test_octo_timespans_are_read_as_seconds(text: str, seconds: float) -> None:
    assert timespan(text) == seconds


def test_global_options_after_the_command_are_hoisted_in_front() -> None:
    argv = [
        "release",
        "deploy",
        "--project",
        "P",
        "--output",
        "json",
        "--server=http://s",
        "--to",
        "E",
    ]
    assert normalize(argv) == [
        "--output",
        "json",
        "--server=http://s",
        "release",
        "deploy",
        "--project",
        "P",
        "--to",
        "E",
    ]


def test_the_config_file_is_private_and_flags_beat_env_beat_the_file(
    isolated_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_file(Config("http://file:8080", "file-space", "API-FILE"))
    assert path == isolated_config
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_file() == Config("http://file:8080", "file-space", "API-FILE")
    monkeypatch.setenv("CEPHALO_SERVER", "http://env:8080/")
    monkeypatch.setenv("CEPHALO_API_KEY", "API-ENV")
    assert resolve() == Config("http://env:8080", "file-space", "API-ENV")
    assert resolve(api_key="API-FLAG", space="flag") == Config(
        "http://env:8080", "flag", "API-FLAG"
    )


def test_a_config_file_others_can_read_is_refused_with_exit_code_2(
    isolated_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_file(Config(api_key="API-SECRET"))
    isolated_config.chmod(0o644)
    assert run(["project", "list"]) == 2
    err = capsys.readouterr().err
    assert "chmod 600" in err and len(err.strip().splitlines()) == 1


def test_an_unreachable_server_is_one_line_and_exit_code_3(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = f"http://127.0.0.1:{free_port()}"
    assert run(["--server", server, "release", "deploy", "-p", "P", "--to", "E"]) == 3
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [captured.err.strip()]
    assert f"cannot reach {server}" in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize(
    "argv",
    [
        ["release", "deploy", "--project", "P"],
        ["release", "create", "--project"],
        ["package", "push", "--overwrite-mode", "Sometimes", "x.zip"],
        ["schema", "no such command"],
        [
            "deploy-release",
            "--project",
            "P",
            "--deployTo",
            "E",
            "--version",
            "1",
            "--guidedFailure=maybe",
        ],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--server", f"http://127.0.0.1:{free_port()}", *argv]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_pushing_a_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["package", "push", "/nonexistent/Acme.1.0.0.zip"]) == 2
    assert "no such file: /nonexistent/Acme.1.0.0.zip" in capsys.readouterr().err


def test_problems_become_one_line_naming_the_fields() -> None:
    response = httpx.Response(
        422,
        json={
            "title": "Invalid input",
            "detail": "bad\nrelease",
            "errors": [{"field": "body.version", "message": "too long"}],
        },
    )
    assert problem_message(response) == "Invalid input: bad release (body.version: too long)"
    assert problem_message(httpx.Response(502, text="<html>\nBad gateway</html>")) == (
        "HTTP 502: <html> Bad gateway</html>"
    )
    assert "check the API key" in problem_message(httpx.Response(401, json={"title": "x"}))


def test_install_commands_pin_the_thumbprint_and_quote_names() -> None:
    commands = install_commands(
        "https://c.example", "default", "AB12", ["Pre Production"], ["web"], [], Mode.POLLING, None
    )
    assert "python3 -m cephalo_agent configure --trust AB12" in commands
    assert (
        "python3 -m cephalo_agent register --server https://c.example --space default "
        "--mode polling --environment 'Pre Production' --tag web"
    ) in commands
    assert not any("API-" in line for line in commands)


def test_every_schema_is_a_valid_draft_2020_12_schema(capsys: pytest.CaptureFixture[str]) -> None:
    for command in SCHEMAS:
        jsonschema_rs.meta.validate(schema(command))
        assert run(["schema", command]) == 0
        assert json.loads(capsys.readouterr().out)["title"] == f"cephalo {command} --output json"


def _leaves(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    children = getattr(command, "commands", None)
    if not children:
        return [(path, command)]
    return [leaf for name, child in children.items() for leaf in _leaves(child, (*path, name))]


def test_every_command_has_help_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    leaves = _leaves(typer.main.get_command(app))
    assert len(leaves) == 23
    for path, _ in leaves:
        assert run([*path, "--help"]) == 0
        text = capsys.readouterr().out
        assert "Example" in text, f"cephalo {' '.join(path)} --help has no example"


def test_shell_completion_completes_command_names() -> None:
    env = {
        **os.environ,
        "_CEPHALO_COMPLETE": "complete_bash",
        "COMP_WORDS": "cephalo rel",
        "COMP_CWORD": "1",
    }
    done = subprocess.run(
        [str(Path(sys.executable).with_name("cephalo"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.split() == ["release"]


class _HtmlPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_server_that_is_not_cephalo_is_one_line_and_exit_code_3(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A plain web server on 127.0.0.1 stands for a mistyped --server."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert run(["--server", url, "project", "list"]) == 3
    finally:
        server.shutdown()
        thread.join()
    err = capsys.readouterr().err
    assert "is it a Cephalo server?" in err and len(err.strip().splitlines()) == 1
