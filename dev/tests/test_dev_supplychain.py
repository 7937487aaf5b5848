"""The secrets scan of `make lint` finds a planted key and honours the allowlist pragma."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cephalo_dev.supplychain import scan_secrets, tracked_files

PLANTED = 'AWS_KEY = "AKIAIOSFODNN7EXAMPLE"'  # pragma: allowlist secret


def _repository(tmp_path: Path, files: dict[str, str]) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    return tmp_path


def test_a_planted_key_fails_the_scan(tmp_path: Path, capsys) -> None:
    root = _repository(tmp_path, {"app/settings.py": PLANTED + "\n"})
    assert scan_secrets(root) == 1
    assert "app/settings.py:1: possible AWS Access Key" in capsys.readouterr().out


def test_a_reviewed_line_passes(tmp_path: Path) -> None:
    root = _repository(tmp_path, {"app/settings.py": PLANTED + "  # pragma: allowlist secret\n"})
    assert scan_secrets(root) == 0


def test_tests_and_migrations_are_not_scanned(tmp_path: Path) -> None:
    files = {
        "svc/tests/test_x.py": PLANTED,
        "svc/db/migrations/versions/1_x.py": PLANTED,
        "svc/app.py": "",
        "uv.lock": "",
    }
    assert tracked_files(_repository(tmp_path, files)) == ["svc/app.py"]
