"""The step runner as a real process: scripts, helpers, masking, package deployments.

Packages are real zip and tar.gz files served over HTTP on 127.0.0.1; the runner runs as
`python -m cephalo_agent.steprunner` (and once as the standalone zipapp, without site-packages).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cephalo_agent.steprunner.bundle import build_bundle
from cephalo_common.variables.service_messages import (
    CreateArtifact,
    OutputParser,
    SetVariable,
)

SECRET = "s3cr3t-Pa55"


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def outputs(self) -> dict[str, SetVariable]:
        return {m.name: m for m in _messages(self.stdout) if isinstance(m, SetVariable)}

    @property
    def artifacts(self) -> list[CreateArtifact]:
        return [m for m in _messages(self.stdout) if isinstance(m, CreateArtifact)]


def _messages(text: str) -> list[Any]:
    parser = OutputParser()
    return [e for e in [*parser.feed(text), *parser.flush()] if not isinstance(e, str)]


class Feed:
    """Serves package bytes by name and counts the downloads."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.downloads: list[str] = []
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                body = feed.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                feed.downloads.append(name)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, name: str, data: bytes) -> dict[str, Any]:
        self.files[name] = data
        port = self.server.server_address[1]
        return {
            "url": f"http://127.0.0.1:{port}/{name}",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }


@pytest.fixture
def feed() -> Iterator[Feed]:
    served = Feed()
    yield served
    served.server.shutdown()
    served.server.server_close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "cephalo-home"


def run_runner(action: dict[str, Any], tmp_path: Path, argv: list[str] | None = None) -> Run:
    action_file = tmp_path / f"action-{os.urandom(4).hex()}.json"
    action_file.write_text(json.dumps(action))
    action_file.chmod(0o600)
    command = argv or [sys.executable, "-m", "cephalo_agent.steprunner"]
    done = subprocess.run(
        [*command, "--action", str(action_file), "--consume"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert not action_file.exists(), "--consume deletes the action (it holds secrets)"
    return Run(done.returncode, done.stdout, done.stderr)


def make_zip(files: dict[str, str], *, executable: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (0o100755 if name in executable else 0o100644) << 16
            archive.writestr(info, text)
    return buffer.getvalue()


def script_action(body: str, syntax: str = "bash", **extra: Any) -> dict[str, Any]:
    return {
        "action_type": "cephalo.script",
        "syntax": syntax,
        "script_body": body,
        "variables": {"Name": "world", "Password": SECRET, "Multi.Word": "two words"},
        "sensitive_variables": ["Password"],
        **extra,
    }


def test_bash_script_sees_variables_and_talks_back_through_helpers(tmp_path: Path) -> None:
    body = """
echo "hello $CEPHALO_VAR_NAME and $CEPHALO_VAR_MULTI_WORD"
echo "password from the helper: $(get_cephalovariable password)"
echo "default: $(get_octopusvariable Missing fallback)"
echo "in the environment: ${CEPHALO_VAR_PASSWORD:-absent}"
stat -c %a "$CEPHALO_VARIABLES_FILE"
set_cephalovariable Color blue
set_octopusvariable Token "tok-9f8e7d" -sensitive
echo "report" > report.txt
new_cephaloartifact report.txt "Report.txt"
echo "the token is tok-9f8e7d"
"""
    run = run_runner(script_action(body), tmp_path)
    assert run.exit_code == 0, run.stderr
    assert "hello world and two words" in run.stdout
    assert "password from the helper: ********" in run.stdout
    assert "default: fallback" in run.stdout
    assert "in the environment: absent" in run.stdout
    assert "\n600\n" in run.stdout
    assert SECRET not in run.stdout + run.stderr
    assert run.outputs["Color"].value == "blue" and not run.outputs["Color"].sensitive
    assert run.outputs["Token"].value == "tok-9f8e7d" and run.outputs["Token"].sensitive
    assert "the token is ********" in run.stdout
    (artifact,) = run.artifacts
    assert artifact.original_filename == "Report.txt" and artifact.length == len("report\n")


def test_python_script_has_the_helpers_as_globals(tmp_path: Path) -> None:
    body = """
import os, sys
print("argv clean:", all("s3cr3t" not in a for a in open(f"/proc/{os.getpid()}/cmdline").read().split("\\0")))
print("password:", get_octopusvariable("PASSWORD"))
set_octopusvariable("Answer", "42")
set_cephalovariable("Hidden", "hidden-" + get_cephalovariable("Password"), sensitive=True)
with open("out.bin", "wb") as handle:
    handle.write(b"xyz")
new_octopusartifact("out.bin")
"""
    run = run_runner(script_action(body, "python"), tmp_path)
    assert run.exit_code == 0, run.stderr
    assert "argv clean: True" in run.stdout
    assert "password: ********" in run.stdout
    assert run.outputs["Answer"].value == "42"
    assert run.outputs["Hidden"].sensitive
    assert [a.original_filename for a in run.artifacts] == ["out.bin"]
    assert SECRET not in run.stdout + run.stderr


def test_fail_step_fails_with_its_message_and_secrets_stay_masked(tmp_path: Path) -> None:
    body = 'echo "about to fail" >&2\nfail_step "cannot reach $(get_cephalovariable Password)"\necho never'
    run = run_runner(script_action(body, "sh"), tmp_path)
    assert run.exit_code == 1
    assert "never" not in run.stdout
    assert "about to fail" in run.stderr
    assert run.stderr.strip().splitlines()[-1] == "cannot reach ********"


def test_an_unusable_action_is_refused_with_a_reason(tmp_path: Path) -> None:
    run = run_runner({"action_type": "cephalo.kubernetes-yaml"}, tmp_path)
    assert run.exit_code == 2
    assert "cannot run actions of type 'cephalo.kubernetes-yaml'" in run.stderr
    run = run_runner(script_action("echo hi", "ruby"), tmp_path)
    assert run.exit_code == 2 and "'ruby'" in run.stderr


APP_FILES = {
    "PreDeploy.sh": 'echo "PreDeploy saw $(cat appsettings.json | tr -d " \\n")" >> ../../phases.log\n'
    'echo "pre in $PWD"\n',
    "Deploy.sh": 'echo Deploy >> ../../phases.log\nset_cephalovariable DeployedBy "$(get_cephalovariable Name)"\n',
    "PostDeploy.py": 'open("../../phases.log", "a").write("PostDeploy\\n")\n',
    "DeployFailed.sh": "echo DeployFailed >> ../../phases.log\n",
    "appsettings.json": json.dumps(
        {
            "Logging": {"LogLevel": {"Default": "Information"}},
            "Port": 80,
            "Enabled": False,
            "Hosts": ["a", "b"],
            "Name": "unchanged",
        }
    ),
    "config/app.yaml": "# settings\nserver:\n  port: 8080 # comment\n  host: localhost\nname: app\n",
    "config/app.properties": "# props\ndb.url=jdbc:old\nother=keep\n",
    "config/.env": "export API_URL=http://old\nKEEP=1\n",
    "web/index.html": "<h1>#{Name} in #{Octopus.Environment.Name}</h1>\n",
}
APP_PROPERTIES = {
    "Octopus.Action.SubstituteInFiles.TargetFiles": "web/*.html",
    "Octopus.Action.Package.JsonConfigurationVariablesTargets": (
        "appsettings.json\nconfig/*.yaml\nconfig/*.properties\nconfig/.env"
    ),
}
APP_VARIABLES = {
    "Name": "Shop",
    "Octopus.Environment.Name": "Production",
    "Logging:LogLevel:Default": "Warning",
    "Port": "8081",
    "Enabled": "true",
    "Hosts:1": "c",
    "server.port": "9090",
    "db.url": "jdbc:postgresql://db/shop",
    "API_URL": "https://api.example.com/v1 x",
    "Password": SECRET,
}


def deploy_action(
    package: dict[str, Any], home: Path, version: str = "1.0.0", **properties: Any
) -> dict[str, Any]:
    return {
        "action_type": "cephalo.deploy-package",
        "variables": APP_VARIABLES,
        "sensitive_variables": ["Password"],
        "properties": {**APP_PROPERTIES, **properties},
        "packages": [{"package_id": "Shop.Web", "version": version, **package}],
        "home": str(home),
    }


def test_a_zip_package_is_deployed_with_every_convention_in_order(
    tmp_path: Path, feed: Feed, home: Path
) -> None:
    package = feed.publish("shop.1.0.0.zip", make_zip(APP_FILES, executable=("Deploy.sh",)))
    run = run_runner(deploy_action(package, home), tmp_path)
    assert run.exit_code == 0, run.stderr
    folder = home / "apps" / "Production" / "Shop.Web" / "1.0.0"
    assert run.outputs["Package.InstallationDirectoryPath"].value == str(folder)
    assert run.outputs["DeployedBy"].value == "Shop"
    phases = (home / "apps" / "Production" / "phases.log").read_text().splitlines()
    assert phases[0].startswith("PreDeploy saw") and '"Information"' in phases[0]
    assert phases[1:] == ["Deploy", "PostDeploy"]
    settings = json.loads((folder / "appsettings.json").read_text())
    assert settings == {
        "Logging": {"LogLevel": {"Default": "Warning"}},
        "Port": 8081,
        "Enabled": True,
        "Hosts": ["a", "c"],
        "Name": "Shop",
    }
    assert (folder / "config/app.yaml").read_text() == (
        "# settings\nserver:\n  port: 9090\n  host: localhost\nname: Shop\n"
    )
    assert (folder / "config/app.properties").read_text() == (
        "# props\ndb.url=jdbc:postgresql://db/shop\nother=keep\n"
    )
    assert (folder / "config/.env").read_text() == (
        'export API_URL="https://api.example.com/v1 x"\nKEEP=1\n'
    )
    assert (folder / "web/index.html").read_text() == "<h1>Shop in Production</h1>\n"
    assert os.access(folder / "Deploy.sh", os.X_OK)
    assert not os.access(folder / "appsettings.json", os.X_OK)
    assert feed.downloads == ["shop.1.0.0.zip"]


def test_the_package_cache_skips_the_second_download_and_redeploys_beside(
    tmp_path: Path, feed: Feed, home: Path
) -> None:
    package = feed.publish("shop.zip", make_zip({"Deploy.sh": "echo deployed"}))
    first = run_runner(deploy_action(package, home), tmp_path)
    second = run_runner(deploy_action(package, home), tmp_path)
    assert first.exit_code == second.exit_code == 0, second.stderr
    assert feed.downloads == ["shop.zip"]
    assert "found in the local cache" in second.stdout
    base = home / "apps" / "Production" / "Shop.Web"
    assert sorted(p.name for p in base.iterdir()) == ["1.0.0", "1.0.0_1"]
    cached = home / "packages" / f"{package['sha256']}.pkg"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == package["sha256"]


def test_a_package_whose_hash_differs_is_refused_and_not_cached(
    tmp_path: Path, feed: Feed, home: Path
) -> None:
    package = feed.publish("shop.zip", make_zip({"Deploy.sh": "echo deployed"}))
    package["sha256"] = hashlib.sha256(b"something else").hexdigest()
    package["size"] = None
    run = run_runner(deploy_action(package, home), tmp_path)
    assert run.exit_code == 1
    assert "failed verification" in run.stderr
    assert list((home / "packages").iterdir()) == []
    assert not (home / "apps").exists()


def test_a_failing_deploy_runs_deploy_failed_and_leaves_the_previous_version(
    tmp_path: Path, feed: Feed, home: Path
) -> None:
    good = feed.publish("v1.zip", make_zip({**APP_FILES}))
    assert run_runner(deploy_action(good, home, "1.0.0"), tmp_path).exit_code == 0
    base = home / "apps" / "Production" / "Shop.Web"
    before = {
        p.relative_to(base): p.read_bytes() for p in (base / "1.0.0").rglob("*") if p.is_file()
    }
    log = home / "apps" / "Production" / "phases.log"
    log.unlink()
    broken = {**APP_FILES, "Deploy.sh": 'echo "disk is full" >&2\nexit 3\n'}
    bad = feed.publish("v2.zip", make_zip(broken))
    run = run_runner(deploy_action(bad, home, "2.0.0"), tmp_path)
    assert run.exit_code == 1
    assert "Deploy script exited with code 3" in run.stderr
    assert "The deployment of Shop.Web 2.0.0 failed." in run.stderr
    assert log.read_text().splitlines()[1:] == ["DeployFailed"]
    after = {
        p.relative_to(base): p.read_bytes() for p in (base / "1.0.0").rglob("*") if p.is_file()
    }
    assert after == before
    journal = json.loads((home / "deployments.json").read_text())
    assert [(e["version"], e["successful"]) for e in journal] == [("1.0.0", True), ("2.0.0", False)]


def test_skip_if_already_installed_and_retention(tmp_path: Path, feed: Feed, home: Path) -> None:
    package = feed.publish("p.zip", make_zip({"Deploy.sh": "echo DEPLOYED-NOW"}))
    skip = {"Octopus.Action.Package.SkipIfAlreadyInstalled": "True"}
    first = run_runner(deploy_action(package, home, "1.0.0", **skip), tmp_path)
    again = run_runner(deploy_action(package, home, "1.0.0", **skip), tmp_path)
    assert "DEPLOYED-NOW" in first.stdout and "DEPLOYED-NOW" not in again.stdout
    assert "already installed" in again.stdout and again.outputs["Package.Skipped"].value == "True"
    keep = {"Cephalo.Action.Package.RetentionKeep": "2"}
    for version in ("2.0.0", "3.0.0"):
        run = run_runner(deploy_action(package, home, version, **keep), tmp_path)
        assert run.exit_code == 0, run.stderr
    base = home / "apps" / "Production" / "Shop.Web"
    assert sorted(p.name for p in base.iterdir()) == ["2.0.0", "3.0.0"]
    assert "Retention: removed" in run.stdout
    reinstalled = run_runner(deploy_action(package, home, "1.0.0", **skip), tmp_path)
    assert "DEPLOYED-NOW" in reinstalled.stdout, "a removed folder is no longer installed"


def test_a_tar_gz_package_and_a_custom_directory(tmp_path: Path, feed: Feed, home: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in {"bin/run.sh": "echo run", "Deploy.sh": "echo from-tar"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(text)
            info.mode = 0o755
            archive.addfile(info, io.BytesIO(text.encode()))
    package = feed.publish("p.tar.gz", buffer.getvalue())
    custom = tmp_path / "custom-site"
    (custom).mkdir()
    (custom / "stale.txt").write_text("old")
    props = {
        "Octopus.Action.Package.CustomInstallationDirectory": str(custom),
        "Octopus.Action.Package.CustomInstallationDirectoryShouldBePurgedBeforeDeployment": "True",
    }
    run = run_runner(deploy_action(package, home, **props), tmp_path)
    assert run.exit_code == 0, run.stderr
    assert "from-tar" in run.stdout
    assert sorted(p.name for p in custom.iterdir()) == ["Deploy.sh", "bin"]
    assert os.access(custom / "bin/run.sh", os.X_OK)


def _zip_with_symlink() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("link")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _tar_with_symlink() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("escape")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../../../etc"
        archive.addfile(info)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (make_zip({"../evil.sh": "x"}), "climbs out of the folder"),
        (make_zip({"/abs.sh": "x"}), "has an absolute path"),
        (make_zip({"ok/..\\..\\evil": "x"}), "climbs out of the folder"),
        (_zip_with_symlink(), "is a symbolic link"),
        (_tar_with_symlink(), "is a symbolic link"),
        (b"not an archive at all", "neither a zip nor a tar.gz"),
    ],
    ids=["zip-slip", "zip-absolute", "zip-backslash-slip", "zip-symlink", "tar-symlink", "junk"],
)
def test_unsafe_packages_are_refused_before_anything_runs(
    tmp_path: Path, feed: Feed, home: Path, data: bytes, reason: str
) -> None:
    package = feed.publish("bad.zip", data)
    run = run_runner(deploy_action(package, home), tmp_path)
    assert run.exit_code == 1
    assert reason in run.stderr
    assert not (tmp_path / "evil.sh").exists() and not (home / "apps" / "evil.sh").exists()
    base = home / "apps" / "Production" / "Shop.Web"
    assert list(base.iterdir()) == [], "the half-extracted folder is removed"


def test_the_zipapp_bundle_runs_without_site_packages(
    tmp_path: Path, feed: Feed, home: Path
) -> None:
    version, data = build_bundle()
    bundle = tmp_path / "runner.pyz"
    bundle.write_bytes(data)
    isolated = [sys.executable, "-I", "-S", str(bundle)]
    printed = subprocess.run([*isolated, "--version"], capture_output=True, text=True, check=True)
    assert printed.stdout.strip() == version == build_bundle()[0]
    package = feed.publish("shop.zip", make_zip(APP_FILES))
    run = run_runner(deploy_action(package, home), tmp_path, argv=isolated)
    assert run.exit_code == 0, run.stderr
    folder = home / "apps" / "Production" / "Shop.Web" / "1.0.0"
    assert (folder / "web/index.html").read_text() == "<h1>Shop in Production</h1>\n"
    assert base64.b64encode(b"Shop").decode() in run.stdout
