"""Startup: install the master keys and prove the stored sensitive values decrypt with them."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from cephalo_common.db.engine import create_engine, create_sessionmaker
from cephalo_common.http.app import Runtime
from cephalo_common.logging import get_logger
from cephalo_release.domain.secrets import Keyring, check_decryptable, install_keyring
from cephalo_release.settings import ReleaseSettings

log = get_logger(__name__)


def keyring_from(settings: ReleaseSettings) -> Keyring:
    return Keyring.load(
        settings.master_key.get_secret_value() if settings.master_key else None,
        settings.master_key_file,
        [key.get_secret_value() for key in settings.previous_master_keys],
    )


async def start_secrets(runtime: Runtime) -> None:
    """A wrong or missing key fails startup here, not at the first deployment.

    An unreachable or unmigrated database skips the check with a warning (the service
    still starts and reports not ready), like every other dependency. The check has an engine of
    its own, so no connection of the service's pool is opened before it serves.
    """
    settings = runtime.settings
    assert isinstance(settings, ReleaseSettings)
    install_keyring(keyring_from(settings))
    engine = create_engine(settings.database, application_name="release-startup-check")
    try:
        async with create_sessionmaker(engine)() as session:
            checked = await check_decryptable(session)
    except (SQLAlchemyError, OSError) as error:
        log.warning("sensitive values could not be checked at startup", error=str(error))
        return
    finally:
        await engine.dispose()
    log.info("sensitive values decrypt with the configured master keys", keys_checked=checked)
