"""Cephalo's Tentacle-like agent: runs scripts for the server, once per ticket, over pinned mTLS."""

from __future__ import annotations


def agent_version() -> str:
    """The installed distribution's version, so capabilities report what is really running.

    `importlib.metadata` is imported here, not at the top: every module of the package pays
    for this one's imports, the step runner too, which starts once per SSH step."""
    from importlib import metadata

    try:
        return metadata.version("cephalo-agent")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"
