"""DynamoDB state store: the blob split into chunks under a versioned head item.

DynamoDB items are limited to 400 KB, and a forest state is larger, so the blob is written as
chunk items ``<id>#<version>-<random>#<i>`` first, then the head item ``<id>`` is switched to the
new
version with a conditional write (optimistic concurrency: a process that loaded an older version
gets ``ConflictError`` instead of overwriting a newer state). Old chunks are deleted afterwards.
"""

from __future__ import annotations

import uuid
from typing import Any

from rcf_fast.kinesis.errors import ConflictError, StateError
from rcf_fast.kinesis.stores.dynamodb_table import ensure_hash_table

CHUNK_BYTES = 350_000


class DynamoDBStateStore:
    """State blob in a table with string hash key ``state_key``."""

    def __init__(self, client: Any, table: str, state_id: str) -> None:
        self.client = client
        self.table = table
        self.state_id = state_id
        self.version: int | None = None  # version last loaded or saved by this object
        self.parts = 0  # chunk count of that version
        self.tag = ""  # chunk-key tag of that version

    def ensure_table(self) -> None:
        """Create the table (on-demand billing) if it does not exist, and wait for it."""
        ensure_hash_table(self.client, self.table, "state_key")

    def _chunk_key(self, tag: str, i: int) -> dict:
        return {"state_key": {"S": f"{self.state_id}#{tag}#{i}"}}

    def load(self) -> bytes | None:
        head = self.client.get_item(
            TableName=self.table, Key={"state_key": {"S": self.state_id}}, ConsistentRead=True
        ).get("Item")
        if not head:
            self.version, self.parts = 0, 0
            return None
        version, parts, tag = int(head["version"]["N"]), int(head["parts"]["N"]), head["tag"]["S"]
        chunks = []
        for i in range(parts):
            item = self.client.get_item(
                TableName=self.table, Key=self._chunk_key(tag, i), ConsistentRead=True
            ).get("Item")
            if not item:
                raise StateError(
                    f"state {self.state_id!r} version {version}: chunk {i} of {parts} is missing"
                )
            chunks.append(bytes(item["data"]["B"]))
        self.version, self.parts, self.tag = version, parts, tag
        return b"".join(chunks)

    def save(self, data: bytes) -> None:
        if self.version is None:
            self.load()
        old = self.version or 0
        new = old + 1
        # A random tag per write: two writers racing for the same version never share chunk keys.
        tag = f"{new}-{uuid.uuid4().hex[:12]}"
        chunks = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
        for i, chunk in enumerate(chunks):
            self.client.put_item(
                TableName=self.table, Item={**self._chunk_key(tag, i), "data": {"B": chunk}}
            )
        cond = "attribute_not_exists(version)" if old == 0 else "version = :old"
        values = {} if old == 0 else {":old": {"N": str(old)}}
        try:
            kwargs: dict = {"ExpressionAttributeValues": values} if values else {}
            self.client.put_item(
                TableName=self.table,
                Item={
                    "state_key": {"S": self.state_id},
                    "version": {"N": str(new)},
                    "parts": {"N": str(len(chunks))},
                    "tag": {"S": tag},
                },
                ConditionExpression=cond,
                **kwargs,
            )
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                for i in range(len(chunks)):
                    self.client.delete_item(TableName=self.table, Key=self._chunk_key(tag, i))
                raise ConflictError(
                    f"state {self.state_id!r} was saved by another process since version {old}; "
                    "reload it"
                ) from None
            raise
        old_parts, old_tag = self.parts, self.tag
        self.version, self.parts, self.tag = new, len(chunks), tag
        for i in range(old_parts):
            self.client.delete_item(TableName=self.table, Key=self._chunk_key(old_tag, i))
