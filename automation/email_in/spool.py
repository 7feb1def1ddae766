"""The mail spool: accepted messages on disk until they are processed.

A message is written to ``tmp/``, fsynced, renamed into ``new/`` and the
folder fsynced, before the sender is told it was accepted. Processing
claims an entry by renaming it into ``work/`` (one claimer wins), removes it
once the database holds the outcome, and renames it back into ``new/`` if
the database was unavailable. Entries that cannot be processed at all go to
``failed/`` with a ``.reason`` file next to them: kept, never dropped.
A claim left in ``work/`` by a process that died is put back after
``STALE_CLAIM``; processing is idempotent (the Message-ID is unique per
organization), so doing it twice creates nothing new.

File format: one line of JSON (the envelope), a newline, the raw message.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automation.email_in import conf

logger = logging.getLogger(__name__)

STALE_CLAIM = 600.0
SUFFIX = ".msg"


@dataclass(frozen=True)
class SpoolEntry:
    name: str
    envelope: dict[str, Any]
    raw: bytes


class Spool:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else conf.spool_dir()
        self.tmp, self.new, self.work, self.failed = (self.root / n for n in ("tmp", "new", "work", "failed"))

    def ensure(self) -> Spool:
        for folder in (self.tmp, self.new, self.work, self.failed):
            folder.mkdir(parents=True, exist_ok=True, mode=0o750)
        return self

    @staticmethod
    def _fsync_dir(folder: Path) -> None:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def write(self, raw: bytes, envelope: dict[str, Any]) -> str:
        """Store a message durably; return its entry name. Raises OSError if it could not be stored."""
        self.ensure()
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}{SUFFIX}"
        header = json.dumps(envelope, separators=(",", ":"), default=str).encode()
        temporary = self.tmp / name
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(header + b"\n" + raw)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(temporary, self.new / name)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        self._fsync_dir(self.new)
        return name

    def _read(self, path: Path) -> SpoolEntry:
        data = path.read_bytes()
        header, _, raw = data.partition(b"\n")
        return SpoolEntry(name=path.name, envelope=json.loads(header), raw=raw)

    def claim(self, name: str) -> SpoolEntry | None:
        """Take ``name`` for processing; None if another process took it (or it is gone)."""
        try:
            os.rename(self.new / name, self.work / name)
        except FileNotFoundError:
            return None
        try:
            os.utime(self.work / name)  # the claim's age, for recover_stale
            return self._read(self.work / name)
        except (OSError, ValueError) as exc:
            self.fail(name, f"unreadable spool entry: {exc}")
            return None

    def done(self, name: str) -> None:
        (self.work / name).unlink(missing_ok=True)
        self._fsync_dir(self.work)

    def release(self, name: str) -> None:
        """Put a claimed entry back for a later attempt."""
        try:
            os.rename(self.work / name, self.new / name)
        except FileNotFoundError:
            logger.warning("spool entry %s vanished while claimed", name)

    def fail(self, name: str, reason: str) -> None:
        """Keep an entry that cannot be processed in ``failed/`` with the reason beside it."""
        self.ensure()
        (self.failed / f"{name}.reason").write_text(reason + "\n")
        try:
            os.rename(self.work / name, self.failed / name)
        except FileNotFoundError:
            logger.warning("spool entry %s vanished before it could be kept as failed", name)
        logger.error("spool entry %s could not be processed and is kept in %s: %s", name, self.failed, reason)

    def recover_stale(self, *, older_than: float = STALE_CLAIM) -> int:
        """Put back claims older than ``older_than`` seconds (their process died)."""
        if not self.work.exists():
            return 0
        cutoff = time.time() - older_than
        recovered = 0
        for path in self.work.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    os.rename(path, self.new / path.name)
                    recovered += 1
            except FileNotFoundError:
                continue
        return recovered

    def pending(self, limit: int = 1000) -> list[str]:
        """Names waiting in ``new/``, oldest first."""
        if not self.new.exists():
            return []
        return sorted(p.name for p in self.new.iterdir() if p.name.endswith(SUFFIX))[:limit]

    def count(self) -> dict[str, int]:
        return {folder.name: sum(1 for p in folder.iterdir() if p.name.endswith(SUFFIX)) if folder.exists() else 0
                for folder in (self.new, self.work, self.failed)}
