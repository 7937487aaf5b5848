"""Where the CLI finds its server, space and API key: flags, then env, then the config file.

The file holds an API key, so it is written with 0600 permissions (its directory 0700) and
replaced atomically; a file others can read is refused rather than silently trusted.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_SERVER = "http://127.0.0.1:8080"
DEFAULT_SPACE = "default"


class ConfigError(Exception):
    """The config file is unreadable, malformed or too open."""


@dataclass(frozen=True)
class Config:
    server: str = DEFAULT_SERVER
    space: str = DEFAULT_SPACE
    api_key: str | None = None


def config_path() -> Path:
    """`$XDG_CONFIG_HOME/cephalo/config.json`, else `~/.config/cephalo/config.json`."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cephalo" / "config.json"


def load_file(path: Path | None = None) -> Config:
    path = path or config_path()
    if not path.exists():
        return Config()
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} is readable by others; run: chmod 600 {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a JSON object")
    return Config(
        server=str(data.get("server") or DEFAULT_SERVER),
        space=str(data.get("space") or DEFAULT_SPACE),
        api_key=data.get("api_key") or None,
    )


def save_file(config: Config, path: Path | None = None) -> Path:
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(asdict(config), handle, indent=2)
    os.chmod(partial, 0o600)
    os.replace(partial, path)
    return path


def resolve(
    server: str | None = None, space: str | None = None, api_key: str | None = None
) -> Config:
    """Flags win over CEPHALO_* variables, which win over the file."""
    env = os.environ
    server = server or env.get("CEPHALO_SERVER")
    space = space or env.get("CEPHALO_SPACE")
    api_key = api_key or env.get("CEPHALO_API_KEY")
    stored = Config() if server and space and api_key else load_file()
    return Config(
        server=(server or stored.server).rstrip("/"),
        space=space or stored.space,
        api_key=api_key or stored.api_key,
    )
