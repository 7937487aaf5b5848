"""`python -m cephalo_agent`: set up, register and run the agent (argparse: no extra dependencies).

Exit codes: 0 ok, 1 refused or failed, 2 usage, 3 server unreachable, 4 server not trusted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence

from cephalo_agent.config import AgentPaths, NotRegistered, load_config, resolve_home
from cephalo_agent.registration import (
    EXIT_REFUSED,
    EXIT_USAGE,
    RegistrationError,
    deregister,
    ensure_identity,
    pin_server,
    register,
)
from cephalo_agent.runner import run_agent
from cephalo_common.security.tls import thumbprint

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def cmd_new_certificate(paths: AgentPaths, args: argparse.Namespace) -> int:
    existed = paths.certificate.exists() and paths.private_key.exists()
    if existed and args.force:
        if load_config(paths).registered:
            _say(
                "WARNING: this agent is registered; the server still trusts the old certificate. "
                "Deregister and register again, or update the machine's thumbprint on the server."
            )
        paths.certificate.unlink()
        paths.private_key.unlink()
    elif existed:
        _say(f"a certificate already exists in {paths.root} (use --force to replace it)")
    print(ensure_identity(paths))
    return 0


def cmd_show_thumbprint(paths: AgentPaths, args: argparse.Namespace) -> int:
    if not paths.certificate.exists():
        _say(f"no certificate in {paths.root}; run `new-certificate` first")
        return EXIT_REFUSED
    print(thumbprint(paths.certificate.read_bytes()))
    return 0


def cmd_configure(paths: AgentPaths, args: argparse.Namespace) -> int:
    if args.trust is None and not args.reset_trust:
        _say("nothing to configure: give --trust THUMBPRINT or --reset-trust")
        return EXIT_USAGE
    try:
        config = pin_server(paths, None if args.reset_trust else args.trust)
    except ValueError as exc:
        _say(str(exc))
        return EXIT_USAGE
    if config.server_thumbprint:
        _say(f"the agent will only trust a server with thumbprint {config.server_thumbprint}")
    else:
        _say("trust reset: the next registration trusts the server on first use")
    if config.registered and not paths.server_certificate.exists():
        _say("the saved server certificate did not match and was removed; register again")
    return 0


def cmd_register(paths: AgentPaths, args: argparse.Namespace) -> int:
    if args.mode == "polling" and (args.listen_url or args.listen_port):
        _say("--listen-url and --listen-port need --mode listening")
        return EXIT_USAGE
    if args.worker_pool and args.environment:
        _say("a worker belongs to worker pools, not environments: give one or the other")
        return EXIT_USAGE
    if not args.server:
        _say("give --server URL (or set CEPHALO_SERVER_URL)")
        return EXIT_USAGE
    result = register(
        paths,
        server_url=args.server,
        space=args.space,
        name=args.name,
        environments=args.environment,
        roles=args.tag,
        mode=args.mode,
        api_key=args.api_key,
        listening_url=args.listen_url,
        listen_host=args.listen_host,
        listen_port=args.listen_port,
        worker_pools=args.worker_pool,
    )
    if result.trusted_on_first_use:
        banner = "!" * 78
        _say(
            f"{banner}\n"
            "!! TRUSTING THE SERVER ON FIRST USE. Its certificate thumbprint is:\n"
            f"!!   {result.server_thumbprint}\n"
            "!! Check it against the server's own thumbprint through another channel. To pin\n"
            "!! it in advance instead, run `configure --trust THUMBPRINT` before `register`.\n"
            f"{banner}"
        )
    config = result.config
    what = "worker" if config.kind == "worker" else "deployment target"
    _say(
        f"registered as {what} {config.machine_name} ({config.machine_id}) in space {config.space}"
    )
    _say(f"this agent's thumbprint: {result.agent_thumbprint}")
    if config.mode == "listening":
        _say(
            f"the server dials {config.listening_url}; `run` listens on "
            f"{config.listen_host}:{config.listen_port}"
        )
    else:
        _say(f"polling endpoint: {config.polling_endpoint}")
    return 0


def cmd_deregister(paths: AgentPaths, args: argparse.Namespace) -> int:
    known = deregister(paths, api_key=args.api_key)
    _say(
        "deregistered" if known else "the server no longer knew this machine; registration cleared"
    )
    return 0


def cmd_run(paths: AgentPaths, args: argparse.Namespace) -> int:
    paths.ensure()
    try:
        asyncio.run(run_agent(paths))
    except NotRegistered as exc:
        _say(str(exc))
        return EXIT_REFUSED
    return 0


def cmd_status(paths: AgentPaths, args: argparse.Namespace) -> int:
    config = load_config(paths)
    own = thumbprint(paths.certificate.read_bytes()) if paths.certificate.exists() else None
    status = {"data_dir": str(paths.root), "thumbprint": own, **config.model_dump()}
    print(json.dumps(status, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        help="data directory (default $CEPHALO_AGENT_HOME or ~/.cephalo-agent)",
    )
    parser = argparse.ArgumentParser(
        prog="cephalo-agent", description="Cephalo deployment agent", parents=[common]
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str,
        handler: Callable[[AgentPaths, argparse.Namespace], int],
        help_text: str,
        *extra: argparse.ArgumentParser,
    ) -> argparse.ArgumentParser:
        command = sub.add_parser(
            name, parents=[common, *extra], help=help_text, description=help_text
        )
        command.set_defaults(handler=handler)
        return command

    add("new-certificate", cmd_new_certificate, "create this agent's certificate").add_argument(
        "--force", action="store_true", help="replace an existing certificate"
    )
    add("show-thumbprint", cmd_show_thumbprint, "print this agent's certificate thumbprint")
    configure = add("configure", cmd_configure, "pin the server's certificate thumbprint")
    configure.add_argument("--trust", metavar="THUMBPRINT")
    configure.add_argument("--reset-trust", action="store_true")

    api_key = argparse.ArgumentParser(add_help=False)
    api_key.add_argument(
        "--api-key",
        default=os.environ.get("CEPHALO_API_KEY"),
        help="API key (prefer $CEPHALO_API_KEY: arguments are visible to other users)",
    )
    reg = add("register", cmd_register, "register this machine as a deployment target", api_key)
    reg.add_argument("--server", default=os.environ.get("CEPHALO_SERVER_URL"), metavar="URL")
    reg.add_argument("--space", default="default")
    reg.add_argument("--environment", action="append", default=[], metavar="ENV")
    reg.add_argument("--tag", action="append", default=[], metavar="ROLE")
    reg.add_argument("--mode", default="polling", choices=["polling", "listening"])
    reg.add_argument(
        "--listen-url",
        metavar="URL",
        help="listening mode: the https://host:port the server dials (default this host, 10933)",
    )
    reg.add_argument(
        "--listen-port", type=int, metavar="PORT", help="listening mode: the port to bind"
    )
    reg.add_argument(
        "--listen-host",
        default="0.0.0.0",
        metavar="ADDRESS",
        help="listening mode: the address to bind (default all)",
    )
    reg.add_argument(
        "--worker-pool",
        action="append",
        default=[],
        metavar="POOL",
        help="register as a worker in this pool (repeatable; 'Default Worker Pool' exists)",
    )
    reg.add_argument("--name", default=socket.gethostname())
    add("deregister", cmd_deregister, "remove this machine from the server", api_key)
    add("run", cmd_run, "serve the server's requests until SIGTERM/SIGINT")
    add("status", cmd_status, "print the configuration as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    paths = resolve_home(getattr(args, "data_dir", None))
    handler: Callable[[AgentPaths, argparse.Namespace], int] = args.handler
    try:
        return handler(paths, args)
    except RegistrationError as exc:
        _say(f"error: {exc}")
        return exc.exit_code
    except (OSError, ValueError) as exc:
        _say(f"error: {exc}")
        return EXIT_REFUSED
