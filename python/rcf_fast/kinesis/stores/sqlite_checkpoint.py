"""SQLite checkpoint store: the local default (one file, safe across local processes)."""

from __future__ import annotations

import sqlite3
import time
from typing import Callable

from rcf_fast.kinesis.errors import ConflictError
from rcf_fast.kinesis.stores.checkpoint import Checkpoint

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    namespace TEXT NOT NULL,
    shard_id TEXT NOT NULL,
    sequence_number TEXT,
    finished INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_expires REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, shard_id)
)
"""


class SQLiteCheckpointStore:
    """Checkpoints in a SQLite file; ``namespace`` separates streams/applications in one file."""

    def __init__(
        self, path: str, namespace: str = "default", clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.namespace = namespace
        self.clock = clock
        # Autocommit mode: every write is its own BEGIN IMMEDIATE transaction below.
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        # WAL + NORMAL: atomic and durable across process crashes; a power loss may roll back the
        # last checkpoints, which only replays records the state already skips.
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def get(self, shard_id: str) -> Checkpoint | None:
        row = self.db.execute(
            "SELECT sequence_number, finished, owner, lease_expires FROM checkpoints "
            "WHERE namespace = ? AND shard_id = ?",
            (self.namespace, shard_id),
        ).fetchone()
        if row is None:
            return None
        return Checkpoint(shard_id, row[0], bool(row[1]), row[2], float(row[3]))

    def acquire(self, shard_id: str, owner: str, lease_seconds: float) -> bool:
        now = self.clock()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute(
                "SELECT owner, lease_expires FROM checkpoints WHERE namespace = ? AND shard_id = ?",
                (self.namespace, shard_id),
            ).fetchone()
            if row is not None and row[0] not in (None, owner) and row[1] > now:
                self.db.execute("ROLLBACK")
                return False
            self.db.execute(
                "INSERT INTO checkpoints (namespace, shard_id, owner, lease_expires) "
                "VALUES (?, ?, ?, ?) "
                "ON CONFLICT (namespace, shard_id) DO UPDATE SET owner = excluded.owner, "
                "lease_expires = excluded.lease_expires",
                (self.namespace, shard_id, owner, now + lease_seconds),
            )
            self.db.execute("COMMIT")
            return True
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def checkpoint(
        self,
        shard_id: str,
        owner: str,
        sequence_number: str | None,
        finished: bool = False,
        lease_seconds: float = 60.0,
    ) -> None:
        cur = self.db.execute(
            "UPDATE checkpoints SET sequence_number = ?, finished = ?, lease_expires = ? "
            "WHERE namespace = ? AND shard_id = ? AND owner = ?",
            (
                sequence_number,
                int(finished),
                self.clock() + lease_seconds,
                self.namespace,
                shard_id,
                owner,
            ),
        )
        if cur.rowcount != 1:
            holder = self.get(shard_id)
            raise ConflictError(
                f"shard {shard_id}: lease is held by {holder.owner if holder else None!r}, "
                f"not {owner!r}; "
                "not checkpointing"
            )

    def release(self, shard_id: str, owner: str) -> None:
        self.db.execute(
            "UPDATE checkpoints SET owner = NULL, lease_expires = 0 "
            "WHERE namespace = ? AND shard_id = ? AND owner = ?",
            (self.namespace, shard_id, owner),
        )
