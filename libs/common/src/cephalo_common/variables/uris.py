"""The `UriPart` filter: parts of a URL named after .NET's `System.Uri` properties."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_DEFAULT_PORTS = {
    "http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21, "sftp": 22, "ssh": 22,
    "ldap": 389, "mailto": 25, "news": 119, "nntp": 119, "gopher": 70, "telnet": 23,
}  # fmt: skip
_RELATIVE = "This operation is not supported for a relative URI."


@dataclass(frozen=True)
class _Uri:
    scheme: str
    user_info: str
    host: str
    port: int
    explicit_port: bool
    path: str
    query: str
    fragment: str

    @property
    def default_port(self) -> int:
        return _DEFAULT_PORTS.get(self.scheme, -1)

    @property
    def authority(self) -> str:
        shown = self.port != -1 and self.port != self.default_port
        return self.host + (f":{self.port}" if shown else "")

    def host_name_type(self) -> str:
        if not self.host:
            return "Basic"
        if self.host.startswith("["):
            return "IPv6"
        try:
            ipaddress.IPv4Address(self.host)
        except ValueError:
            return "Dns"
        return "IPv4"

    def is_loopback(self) -> bool:
        if not self.host:
            return self.scheme == "file"
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False


def _parse(text: str) -> _Uri | str | None:
    """The absolute URI, "relative", or None when `Uri.TryCreate` would fail."""
    if re.match(r"[A-Za-z]:[\\/]", text):
        text = "file:///" + text.replace("\\", "/")
    elif text.startswith("\\\\"):
        text = "file:" + text.replace("\\", "/")
    elif not _SCHEME.match(text):
        return "relative"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if parts.netloc == "" and scheme in ("http", "https", "ws", "wss", "ftp"):
        return None
    path = quote(parts.path, safe="/:@!$&'()*+,;=-._~%")
    if not path and parts.netloc:
        path = "/"
    user_info = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    return _Uri(
        scheme=scheme,
        user_info=user_info,
        host=host,
        port=port if port is not None else _DEFAULT_PORTS.get(scheme, -1),
        explicit_port=port is not None,
        path=path,
        query=f"?{parts.query}" if parts.query else "",
        fragment=f"#{parts.fragment}" if parts.fragment else "",
    )


def uri_part(argument: str, part: str) -> str:
    parsed = _parse(argument)
    if parsed is None:
        return argument
    name = part.lower()
    if parsed == "relative":
        if name == "isabsoluteuri":
            return "false"
        return f"[UriPart {part} error: {_RELATIVE}]"
    assert isinstance(parsed, _Uri)
    uri = parsed
    server = f"{uri.scheme}://{uri.authority}"
    user = f"{uri.user_info}@" if uri.user_info else ""
    local_path = unquote(uri.path)
    if uri.scheme == "file" and uri.host:
        local_path = "\\\\" + uri.host + local_path.replace("/", "\\")
    elif uri.scheme == "file" and re.match(r"/[A-Za-z]:", local_path):
        local_path = local_path[1:].replace("/", "\\")
    parts = {
        "absolutepath": uri.path,
        "absoluteuri": f"{uri.scheme}://{user}{uri.authority}{uri.path}{uri.query}{uri.fragment}",
        "authority": uri.authority,
        "dnssafehost": uri.host.strip("[]"),
        "fragment": uri.fragment,
        "host": uri.host,
        "hostandport": f"{uri.host}:{uri.port}",
        "hostnametype": uri.host_name_type(),
        "isabsoluteuri": "true",
        "isdefaultport": str(uri.port == uri.default_port).lower(),
        "isfile": str(uri.scheme == "file").lower(),
        "isloopback": str(uri.is_loopback()).lower(),
        "isunc": str(uri.scheme == "file" and bool(uri.host)).lower(),
        "path": local_path,
        "pathandquery": uri.path + uri.query,
        "port": str(uri.port),
        "query": uri.query,
        "scheme": uri.scheme,
        "schemeandserver": server,
        "userinfo": uri.user_info,
    }
    if name not in parts:
        return f"[UriPart {part} error: argument '{part}' not supported]"
    return parts[name]
