"""The deployment journal of this target: which package versions were installed where.

"Skip if already installed" asks it for a successful installation of the same package and
version in the same environment whose folder still exists; retention keeps the newest N
successful installations of a package per environment and deletes older folders. One JSON
file, rewritten atomically under an exclusive lock, because steps on one target may run
at the same time when isolation is off.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Installation:
    package_id: str
    version: str
    environment: str
    directory: str
    successful: bool
    installed_at: float
    removed: bool = False


class DeploymentJournal:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[Installation]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self._read()
            before = list(entries)
            yield entries
            if entries != before:
                self._write(entries)

    def _read(self) -> list[Installation]:
        try:
            raw = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return []
        return [Installation(**entry) for entry in raw]

    def _write(self, entries: list[Installation]) -> None:
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps([asdict(e) for e in entries], indent=1), "utf-8")
        os.replace(partial, self.path)

    def installations(self) -> list[Installation]:
        with self._locked() as entries:
            return list(entries)

    def installed(self, package_id: str, version: str, environment: str) -> Installation | None:
        """The newest successful installation of exactly this, if its folder is still there."""
        for entry in reversed(self.installations()):
            same = (entry.package_id, entry.version, entry.environment) == (
                package_id,
                version,
                environment,
            )
            usable = entry.successful and not entry.removed
            if same and usable and Path(entry.directory).is_dir():
                return entry
        return None

    def record(
        self, package_id: str, version: str, environment: str, directory: Path, successful: bool
    ) -> None:
        entry = Installation(
            package_id, version, environment, str(directory), successful, time.time()
        )
        with self._locked() as entries:
            entries.append(entry)

    def retain(self, package_id: str, environment: str, keep: int) -> list[str]:
        """Delete the folders of all but the newest `keep` successful installations."""
        removed: list[str] = []
        with self._locked() as entries:
            kept: set[str] = set()
            for index in range(len(entries) - 1, -1, -1):
                entry = entries[index]
                if (entry.package_id, entry.environment) != (package_id, environment):
                    continue
                if entry.removed or not entry.successful:
                    continue
                if len(kept) < keep or entry.directory in kept:
                    kept.add(entry.directory)
                    continue
                shutil.rmtree(entry.directory, ignore_errors=True)
                entries[index] = Installation(**{**asdict(entry), "removed": True})
                removed.append(entry.directory)
        return removed
