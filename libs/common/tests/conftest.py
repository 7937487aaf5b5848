from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cephalo_common.embedded import EmbeddedNats, free_port


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A NATS server of this test's own, so it can be stopped without harming others."""
    tmp_path.chmod(0o755)
    server = EmbeddedNats(tmp_path / "nats", free_port())
    server.start()
    yield server
    server.stop()
