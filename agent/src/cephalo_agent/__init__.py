"""Cephalo's Tentacle-like agent: runs scripts for the server, once per ticket, over pinned mTLS."""

from __future__ import annotations

from importlib import metadata


def agent_version() -> str:
    """The installed distribution's version, so capabilities report what is really running."""
    try:
        return metadata.version("cephalo-agent")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"
