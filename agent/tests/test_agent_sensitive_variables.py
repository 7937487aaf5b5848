"""Sensitive values reach the script (environment and variables file) but never a log or argv."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cephalo_agent.scripts import MASK, ScriptService
from cephalo_common.agent_protocol import StartScriptCommand

SECRET = "s3cr3t-Value!"

SCRIPT = """
echo "password is $CEPHALO_VAR_DB_PASSWORD"
echo "$CEPHALO_VAR_DB_PASSWORD" >&2
echo "plain is $CEPHALO_VAR_PLAIN"
printf %s "$CEPHALO_VAR_DB_PASSWORD" > "$CEPHALO_VAR_OUT"
stat -c 'variables file mode %a' "$CEPHALO_VARIABLES_FILE"
python3 -c 'import json,os; print("raw name:", json.load(open(os.environ["CEPHALO_VARIABLES_FILE"]))["Db.Password"])'
echo "argv hits: $(grep -c -F -- "$CEPHALO_VAR_DB_PASSWORD" /proc/$$/cmdline)"
echo "$CEPHALO_VAR_MULTI"
"""


async def test_sensitive_value_is_masked_in_logs_and_available_to_the_script(
    scripts: ScriptService,
    tmp_path: Path,
    bash: Callable[..., StartScriptCommand],
    follow: Callable[..., Any],
) -> None:
    out = tmp_path / "secret-seen-by-script"
    command = bash(
        "secret-1",
        SCRIPT,
        variables={
            "Db.Password": SECRET,
            "Plain": "visible",
            "Out": str(out),
            "Multi": "first-line-secret\nsecond-line-secret",
        },
        sensitive_variables=["Db.Password", "Multi", "Not.Defined"],
    )

    await scripts.start_script(command)
    status, lines = await follow(scripts, "secret-1")

    texts = [line.text for line in lines]
    assert status.exit_code == 0, texts
    assert out.read_text() == SECRET
    assert f"password is {MASK}" in texts
    assert MASK in texts
    assert "plain is visible" in texts
    assert "variables file mode 600" in texts
    assert "argv hits: 0" in texts
    assert f"raw name: {MASK}" in texts
    assert texts[-2:] == [MASK, MASK]
    ticket_dir = scripts.tickets_dir / "secret-1"
    for journal_file in ticket_dir.iterdir():
        content = journal_file.read_text()
        assert SECRET not in content and "line-secret" not in content, journal_file.name
    assert not any(SECRET in text or "line-secret" in text for text in texts)


async def test_variables_file_is_removed_once_the_script_ends(
    scripts: ScriptService, bash: Callable[..., StartScriptCommand], follow: Callable[..., Any]
) -> None:
    command = bash(
        "secret-2", "echo $CEPHALO_VARIABLES_FILE", variables={"A": "1"}, sensitive_variables=["A"]
    )
    await scripts.start_script(command)

    _, lines = await follow(scripts, "secret-2")

    variables_file = Path(lines[0].text)
    assert variables_file.name == "variables.json"
    assert not variables_file.exists()
