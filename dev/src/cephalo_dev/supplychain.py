"""`python -m cephalo_dev.supplychain secrets|audit`: the supply-chain checks of `make lint`.

`secrets` scans every tracked file outside tests and migrations with detect-secrets and fails
on any finding; a reviewed false positive carries `# pragma: allowlist secret` on its line, so
there is no baseline whose line numbers drift. `audit` runs pip-audit over the locked
third-party dependencies and fails on a known vulnerability. Where the vulnerability service
cannot be reached (this build network reaches only the package registries) it says how many
dependencies went unaudited instead of failing, so the check still guards every networked run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

SKIPPED = re.compile(r"(^|/)tests/|/migrations/versions/|^uv\.lock$|\.(png|jpg|ico|pyz|zip)$")


def tracked_files(root: Path) -> list[str]:
    """The files git tracks under `root`, minus tests, migrations (revision ids) and binaries."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and not SKIPPED.search(name)]


def scan_secrets(root: Path) -> int:
    """Print every possible secret in the tracked files; the count is the exit status."""
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings

    found = SecretsCollection(root=str(root))
    with default_settings():
        for name in tracked_files(root):
            found.scan_file(name)
    findings = [(name, secret) for name, secret in found]
    for name, secret in findings:
        print(f"{name}:{secret.line_number}: possible {secret.type}")
    if findings:
        print("a real secret must go; a false positive gets `# pragma: allowlist secret`")
    return min(len(findings), 1)


def audit_dependencies(root: Path, uv: str) -> int:
    """pip-audit over `uv export` of the lock: 1 on a known vulnerability, else 0."""
    with tempfile.TemporaryDirectory(prefix="cephalo-audit-") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        export = [uv, "export", "--frozen", "--no-emit-workspace", "--no-hashes", "-q"]
        export += ["--all-packages", "--format", "requirements-txt", "-o", str(requirements)]
        subprocess.run(export, cwd=root, check=True)
        audit = [sys.executable, "-m", "pip_audit", "-r", str(requirements), "--no-deps"]
        audit += ["--disable-pip", "--progress-spinner", "off", "-f", "json"]
        ran = subprocess.run(audit, capture_output=True, text=True)
    if ran.returncode not in (0, 1) or not ran.stdout.strip():
        print(ran.stderr.strip()[-2000:])
        return 1
    dependencies = json.loads(ran.stdout)["dependencies"]
    vulnerable = [d for d in dependencies if d.get("vulns")]
    unaudited = [d for d in dependencies if "skip_reason" in d]
    for dependency in vulnerable:
        ids = ", ".join(v["id"] for v in dependency["vulns"])
        print(f"{dependency['name']} {dependency['version']}: {ids}")
    audited = len(dependencies) - len(unaudited)
    print(f"pip-audit: {audited} dependencies audited, {len(vulnerable)} vulnerable", end="")
    print(f", {len(unaudited)} not audited (vulnerability service unreachable)" * bool(unaudited))
    return 1 if vulnerable else 0


def main(argv: list[str]) -> int:
    root = Path.cwd()
    if argv[:1] == ["secrets"]:
        return scan_secrets(root)
    if argv[:1] == ["audit"] and len(argv) == 2:
        return audit_dependencies(root, argv[1])
    print("usage: python -m cephalo_dev.supplychain secrets | audit <path-to-uv>")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
