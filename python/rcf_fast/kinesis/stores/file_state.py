"""The state-store interface, and the local-file and in-memory stores."""

from __future__ import annotations

import os
import tempfile
from typing import Protocol


class StateStore(Protocol):
    """Holds the latest state blob of one consumer (forests + positions)."""

    def load(self) -> bytes | None:
        """The last saved blob, or None if nothing was saved yet."""
        ...

    def save(self, data: bytes) -> None:
        """Replace the blob; must be atomic (a reader sees the old or the new blob, whole)."""
        ...


class FileStateStore:
    """A local file, replaced atomically (write a temporary file, fsync, rename)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> bytes | None:
        try:
            with open(self.path, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def save(self, data: bytes) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


class MemoryStateStore:
    """Keeps the blob in memory (tests; survives a consumer object, not the process)."""

    def __init__(self, data: bytes | None = None) -> None:
        self.data = data
        self.saves = 0

    def load(self) -> bytes | None:
        return self.data

    def save(self, data: bytes) -> None:
        self.data = bytes(data)
        self.saves += 1
