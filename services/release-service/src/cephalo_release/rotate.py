"""`python -m cephalo_release rotate-keys`: re-encrypt every sensitive value with the current key.

Online: it runs beside the service, in batches of 500 rows per transaction. Afterwards the
previous keys can be removed from CEPHALO_RELEASE_PREVIOUS_MASTER_KEYS.
"""

from __future__ import annotations

import asyncio

from cephalo_common.db.engine import create_engine, create_sessionmaker
from cephalo_common.logging import get_logger
from cephalo_release.domain.secrets import ROTATION_BATCH, install_keyring, rotate
from cephalo_release.events.secrets import keyring_from
from cephalo_release.settings import ReleaseSettings

log = get_logger(__name__)


async def rotate_keys(settings: ReleaseSettings, batch: int = ROTATION_BATCH) -> int:
    install_keyring(keyring_from(settings))
    engine = create_engine(settings.database, application_name="release-rotate-keys")
    try:
        rotated = await rotate(create_sessionmaker(engine), batch)
    finally:
        await engine.dispose()
    log.info("sensitive values re-encrypted with the current master key", rotated=rotated)
    return rotated


def main() -> None:
    rotated = asyncio.run(rotate_keys(ReleaseSettings()))
    print(f"re-encrypted {rotated} sensitive value(s) with the current master key")
