"""`python -m cephalo_dev.newmigration <package> "<message>"`: autogenerate a revision.

Starts a throw-away embedded Postgres, migrates the service to head, and autogenerates the
next revision from the models. Review the file before committing; never edit a landed one.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from alembic import command

from cephalo_common.db.migrations import alembic_config, upgrade
from cephalo_common.embedded import EmbeddedPostgres, free_port


def main(package: str, message: str) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="cephalo-migration-"))
    scratch.chmod(0o755)
    server = EmbeddedPostgres(scratch / "pg", free_port(), durable=False)
    try:
        url = server.start()
        upgrade(package, url)
        command.revision(alembic_config(package, url), message=message, autogenerate=True)
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
