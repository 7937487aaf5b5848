"""The runner's version: a hash of exactly the files a bundle carries.

An SSH target is sent a new bundle only when this differs from the one it has, so any
change to the runner, to the engine it vendors or to the archive rules is a new version, with no number to bump.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import cephalo_agent
import cephalo_common

ENGINE_MODULES = (
    "ast",
    "binding",
    "dotnet_format",
    "errors",
    "evaluator",
    "filters",
    "grammar",
    "json_values",
    "markdown",
    "masking",
    "numbers",
    "parser",
    "regexes",
    "service_messages",
    "uris",
)
STUB_INIT = '"""Bundled for the step runner: only the stdlib-only modules."""\n'


def bundle_sources() -> dict[str, bytes]:
    """Archive name → contents of every file of the runner bundle."""
    agent_root = Path(cephalo_agent.__file__).parent
    common_root = Path(cephalo_common.__file__).parent
    files: dict[str, bytes] = {
        "cephalo_agent/__init__.py": (agent_root / "__init__.py").read_bytes(),
        "cephalo_common/__init__.py": STUB_INIT.encode(),
        "cephalo_common/variables/__init__.py": STUB_INIT.encode(),
        "cephalo_common/packages/__init__.py": STUB_INIT.encode(),
        "cephalo_common/packages/archive_rules.py": (
            common_root / "packages" / "archive_rules.py"
        ).read_bytes(),
    }
    for source in sorted((agent_root / "steprunner").glob("*.py")):
        if source.name not in ("_build.py", "bundle.py"):
            files[f"cephalo_agent/steprunner/{source.name}"] = source.read_bytes()
    for module in ENGINE_MODULES:
        name = f"cephalo_common/variables/{module}.py"
        files[name] = (common_root / "variables" / f"{module}.py").read_bytes()
    return files


def digest(files: dict[str, bytes]) -> str:
    hasher = hashlib.sha256()
    for name in sorted(files):
        hasher.update(name.encode() + b"\0" + files[name] + b"\0")
    return hasher.hexdigest()[:16]


@lru_cache(maxsize=1)
def runner_version() -> str:
    try:
        from cephalo_agent.steprunner._build import (  # type: ignore[import-not-found,unused-ignore]
            VERSION,
        )
    except ImportError:
        return digest(bundle_sources())
    return str(VERSION)
