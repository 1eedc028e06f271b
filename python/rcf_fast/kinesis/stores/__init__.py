"""Checkpoint stores (shard leases + sequence numbers) and state stores (the forests' blob)."""

from rcf_fast.kinesis.stores.checkpoint import Checkpoint, CheckpointStore
from rcf_fast.kinesis.stores.dynamodb_checkpoint import DynamoDBCheckpointStore
from rcf_fast.kinesis.stores.dynamodb_state import DynamoDBStateStore
from rcf_fast.kinesis.stores.file_state import FileStateStore, MemoryStateStore, StateStore
from rcf_fast.kinesis.stores.s3_state import S3StateStore
from rcf_fast.kinesis.stores.sqlite_checkpoint import SQLiteCheckpointStore

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "DynamoDBCheckpointStore",
    "DynamoDBStateStore",
    "FileStateStore",
    "MemoryStateStore",
    "S3StateStore",
    "SQLiteCheckpointStore",
    "StateStore",
]
