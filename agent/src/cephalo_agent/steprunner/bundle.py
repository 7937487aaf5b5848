"""Build the runner as one zipapp (`python3 runner.pyz …`) for hosts without the agent."""

from __future__ import annotations

import io
import zipfile

from cephalo_agent.steprunner.version import bundle_sources, digest

MAIN = "import sys\nfrom cephalo_agent.steprunner.__main__ import main\nsys.exit(main())\n"


def build_bundle() -> tuple[str, bytes]:
    """(version, zipapp bytes); the same sources always give the same version."""
    files = bundle_sources()
    version = digest(files)
    buffer = io.BytesIO()
    buffer.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(_entry(name), data)
        archive.writestr(_entry("cephalo_agent/steprunner/_build.py"), f"VERSION = {version!r}\n")
        archive.writestr(_entry("__main__.py"), MAIN)
    return version, buffer.getvalue()


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info
