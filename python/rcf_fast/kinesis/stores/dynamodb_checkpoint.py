"""DynamoDB checkpoint store: leases and checkpoints with conditional writes.

Item per shard: ``lease_key`` (``namespace/shard_id``), ``owner``, ``lease_expires`` (epoch
seconds), ``sequence_number``, ``finished``. Taking a lease is conditional on it being free,
ours, or expired; a checkpoint is conditional on ``owner`` being us, so two processes never own
one shard.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from rcf_fast.kinesis.errors import ConflictError
from rcf_fast.kinesis.stores.checkpoint import Checkpoint
from rcf_fast.kinesis.stores.dynamodb_table import ensure_hash_table


def _conditional_failed(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code == "ConditionalCheckFailedException"


class DynamoDBCheckpointStore:
    """Checkpoints in a DynamoDB table keyed by ``lease_key`` (string hash key)."""

    def __init__(
        self,
        client: Any,
        table: str,
        namespace: str = "default",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.table = table
        self.namespace = namespace
        self.clock = clock

    def ensure_table(self) -> None:
        """Create the table (on-demand billing) if it does not exist, and wait for it."""
        ensure_hash_table(self.client, self.table, "lease_key")

    def _key(self, shard_id: str) -> dict:
        return {"lease_key": {"S": f"{self.namespace}/{shard_id}"}}

    def get(self, shard_id: str) -> Checkpoint | None:
        item = self.client.get_item(
            TableName=self.table, Key=self._key(shard_id), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return Checkpoint(
            shard_id,
            item.get("sequence_number", {}).get("S"),
            bool(item.get("finished", {}).get("BOOL", False)),
            item.get("owner", {}).get("S"),
            float(item.get("lease_expires", {}).get("N", "0")),
        )

    def acquire(self, shard_id: str, owner: str, lease_seconds: float) -> bool:
        now = self.clock()
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self._key(shard_id),
                UpdateExpression="SET #o = :me, lease_expires = :exp",
                ConditionExpression="attribute_not_exists(#o) OR #o = :me OR lease_expires < :now",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={
                    ":me": {"S": owner},
                    ":exp": {"N": repr(now + lease_seconds)},
                    ":now": {"N": repr(now)},
                },
            )
            return True
        except Exception as exc:
            if _conditional_failed(exc):
                return False
            raise

    def checkpoint(
        self,
        shard_id: str,
        owner: str,
        sequence_number: str | None,
        finished: bool = False,
        lease_seconds: float = 60.0,
    ) -> None:
        values: dict = {
            ":me": {"S": owner},
            ":fin": {"BOOL": finished},
            ":exp": {"N": repr(self.clock() + lease_seconds)},
        }
        expr = "SET finished = :fin, lease_expires = :exp"
        if sequence_number is not None:
            expr += ", sequence_number = :seq"
            values[":seq"] = {"S": sequence_number}
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self._key(shard_id),
                UpdateExpression=expr,
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if _conditional_failed(exc):
                raise ConflictError(
                    f"shard {shard_id}: lease lost by {owner!r}; not checkpointing"
                ) from None
            raise

    def release(self, shard_id: str, owner: str) -> None:
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self._key(shard_id),
                UpdateExpression="REMOVE #o SET lease_expires = :z",
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": {"S": owner}, ":z": {"N": "0"}},
            )
        except Exception as exc:
            if not _conditional_failed(exc):
                raise
