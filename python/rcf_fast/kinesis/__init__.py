"""Kinesis integration: score Kinesis records with one ``RandomCutForest`` per series key.

Every adapter (the boto3 polling ``Consumer``, the Lambda handler, the KCL record processor)
feeds one ``ScoringStep``: decode -> key and values -> score-then-learn -> result or error sink.
The step is idempotent per (shard, sequence number, sub-sequence number), so at-least-once
delivery never teaches a forest the same record twice.
"""

from rcf_fast.kinesis.consumer import Consumer, ConsumerStatus
from rcf_fast.kinesis.decoders import FORMATS, make_decoder, make_line_decoder
from rcf_fast.kinesis.errors import (
    ConfigError,
    ConflictError,
    DecodeError,
    ExpiredIteratorError,
    KinesisError,
    SchemaError,
    SinkError,
    StateError,
    ThrottledError,
)
from rcf_fast.kinesis.forests import KeyedForests, derive_seed
from rcf_fast.kinesis.lambda_handler import LambdaScorer, make_lambda_handler
from rcf_fast.kinesis.records import (
    ErrorRecord,
    Event,
    EventFailure,
    RawRecord,
    ScoreResult,
    explain,
)
from rcf_fast.kinesis.schema import Field, Schema, discover_schema, parse_fields
from rcf_fast.kinesis.sinks import (
    CallbackSink,
    JsonLinesSink,
    KinesisSink,
    MemorySink,
    Sink,
    StdoutSink,
    TeeSink,
)
from rcf_fast.kinesis.source import Boto3ShardSource, RecordsBatch, ShardInfo, ShardSource
from rcf_fast.kinesis.step import ScoringStep, StepStats
from rcf_fast.kinesis.stores import (
    Checkpoint,
    CheckpointStore,
    DynamoDBCheckpointStore,
    DynamoDBStateStore,
    FileStateStore,
    MemoryStateStore,
    S3StateStore,
    SQLiteCheckpointStore,
    StateStore,
)

__all__ = [
    "FORMATS",
    "Boto3ShardSource",
    "CallbackSink",
    "Checkpoint",
    "CheckpointStore",
    "ConfigError",
    "ConflictError",
    "Consumer",
    "ConsumerStatus",
    "DecodeError",
    "DynamoDBCheckpointStore",
    "DynamoDBStateStore",
    "ErrorRecord",
    "Event",
    "EventFailure",
    "ExpiredIteratorError",
    "Field",
    "FileStateStore",
    "JsonLinesSink",
    "KeyedForests",
    "KinesisError",
    "KinesisSink",
    "LambdaScorer",
    "MemorySink",
    "MemoryStateStore",
    "RawRecord",
    "RecordsBatch",
    "S3StateStore",
    "SQLiteCheckpointStore",
    "Schema",
    "SchemaError",
    "ScoreResult",
    "ScoringStep",
    "ShardInfo",
    "ShardSource",
    "Sink",
    "SinkError",
    "StateError",
    "StateStore",
    "StdoutSink",
    "StepStats",
    "TeeSink",
    "ThrottledError",
    "derive_seed",
    "discover_schema",
    "explain",
    "make_decoder",
    "make_lambda_handler",
    "make_line_decoder",
    "parse_fields",
]
