"""`python -m cephalo_gateway [api|migrate]`, plus `create-admin` for the first administrator.

    python -m cephalo_gateway create-admin --username admin --password-file /run/secrets/pw

The password is read from a file (`-` for standard input), never from the command line,
where other users could see it in the process list.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from cephalo_common.db.engine import create_engine, create_sessionmaker
from cephalo_common.db.session import unit_of_work
from cephalo_common.errors import CephaloError
from cephalo_common.service_main import service_main
from cephalo_gateway.app import create_app
from cephalo_gateway.db.repositories import Repositories
from cephalo_gateway.domain import identity
from cephalo_gateway.security import Security
from cephalo_gateway.settings import GatewaySettings

EXIT_USAGE = 2
EXIT_FAILED = 1


def _read_password(source: str) -> str:
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    return text.rstrip("\r\n")


async def create_admin(
    settings: GatewaySettings, username: str, password: str, *, update_existing: bool
) -> str:
    """Create (or, with `update_existing`, reset) a user and make them an administrator."""
    security = Security(settings)
    engine = create_engine(settings.database, application_name="api-gateway-cli")
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            repos = Repositories(session)
            user = await repos.users.find_by_username(username)
            if user is None:
                user = await identity.create_user(
                    repos, security.hasher, username=username, password=password
                )
                outcome = "created"
            elif update_existing:
                await identity.set_password(repos, security.hasher, user, password)
                user.is_active = True
                outcome = "updated"
            else:
                raise CephaloError(
                    f"user {username!r} already exists; pass --update-existing to reset it"
                )
            await identity.make_administrator(repos, user)
            return f"administrator {user.username!r} {outcome}"
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "create-admin":
        service_main("cephalo_gateway", create_app, GatewaySettings, args)  # type: ignore[arg-type]
        return
    parser = argparse.ArgumentParser(prog="python -m cephalo_gateway create-admin")
    parser.add_argument("--username", required=True)
    parser.add_argument(
        "--password-file", required=True, help="file holding the password, or - for stdin"
    )
    parser.add_argument("--update-existing", action="store_true")
    options = parser.parse_args(args[1:])
    try:
        password = _read_password(options.password_file)
    except OSError as error:
        print(f"cannot read the password file: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    try:
        message = asyncio.run(
            create_admin(
                GatewaySettings(),
                options.username,
                password,
                update_existing=options.update_existing,
            )
        )
    except CephaloError as error:
        print(error.detail, file=sys.stderr)
        sys.exit(EXIT_FAILED)
    print(message)


if __name__ == "__main__":
    main()
