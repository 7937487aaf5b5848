"""cephalo_dev.early_teardown in a pytest run of its own: a conftest's session fixture ends
after its last user, before the tests that follow it run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
CONFTEST = """
import pytest
from pathlib import Path

LOG = Path(__file__).parent / "events.txt"

@pytest.fixture(scope="session")
def resource():
    with LOG.open("a") as log:
        log.write("up\\n")
    yield "resource"
    with LOG.open("a") as log:
        log.write("down\\n")
"""
USERS = """
def test_first(resource):
    assert resource == "resource"

def test_second(resource):
    assert resource == "resource"
"""
LATER = """
from pathlib import Path

def test_the_resource_ended_before_this_test():
    assert (Path(__file__).parent / "suite" / "events.txt").read_text().split() == ["up", "down"]
"""


def test_a_session_fixture_ends_after_its_last_user(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "conftest.py").write_text(CONFTEST)
    (tmp_path / "suite" / "test_a_users.py").write_text(USERS)
    (tmp_path / "test_z_later.py").write_text(LATER)
    result = subprocess.run(
        [*PYTEST, "-p", "cephalo_dev.early_teardown", "suite", "test_z_later.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    assert (tmp_path / "suite" / "events.txt").read_text().split() == ["up", "down"]
