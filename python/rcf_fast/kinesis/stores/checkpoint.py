"""The checkpoint-store interface: one lease and one checkpoint per shard.

A process owns a shard while it holds an unexpired lease; every checkpoint write is conditional
on still owning it, so two processes never both advance one shard (the loser gets
``ConflictError``). ``finished`` marks a closed shard read to its end: its children may start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Checkpoint:
    """The stored progress of one shard."""

    shard_id: str
    sequence_number: str | None
    finished: bool
    owner: str | None
    lease_expires: float


class CheckpointStore(Protocol):
    """Shard leases and checkpoints (SQLite and DynamoDB implementations)."""

    def get(self, shard_id: str) -> Checkpoint | None:
        """The shard's checkpoint, or None if never seen."""
        ...

    def acquire(self, shard_id: str, owner: str, lease_seconds: float) -> bool:
        """Take or renew the lease; False if another owner holds an unexpired one."""
        ...

    def checkpoint(
        self,
        shard_id: str,
        owner: str,
        sequence_number: str | None,
        finished: bool = False,
        lease_seconds: float = 60.0,
    ) -> None:
        """Record progress (and renew the lease); ``ConflictError`` if ``owner`` lost the lease."""
        ...

    def release(self, shard_id: str, owner: str) -> None:
        """Give the lease up (if still held by ``owner``)."""
        ...
