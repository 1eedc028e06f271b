"""Typed errors of the Kinesis layer.

Each subclasses the builtin a caller would catch anyway (``ValueError`` for bad data or
configuration, ``RuntimeError`` for lost ownership), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class KinesisError(Exception):
    """Base class of every error raised by ``rcf_fast.kinesis``."""


class ConfigError(KinesisError, ValueError):
    """A configuration value is missing or invalid (names the option and what was expected)."""


class DecodeError(KinesisError, ValueError):
    """A record (or one event inside it) could not be decoded or validated.

    The consumer never raises it to the caller: the scoring step turns it into an error-sink
    entry carrying ``reason`` and the raw bytes.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SchemaError(ConfigError):
    """A schema could not be discovered or parsed (e.g. ``--fields`` with an unknown type)."""


class StateError(KinesisError, ValueError):
    """Persisted state is corrupt, foreign, or was written with an incompatible configuration."""


class ConflictError(KinesisError, RuntimeError):
    """Another process owns the shard lease or has written a newer state version.

    Raised by conditional writes in the checkpoint and state stores; the losing process must
    stop working on the shard (its results may be replayed by the owner, never learned twice).
    """


class SinkError(KinesisError, RuntimeError):
    """Records could not be written to a sink after all retries."""


class TransientError(KinesisError, RuntimeError):
    """Base of errors a shard source may raise that the consumer retries."""


class ThrottledError(TransientError):
    """The service throttled a call (ProvisionedThroughputExceeded, LimitExceeded)."""


class ExpiredIteratorError(TransientError):
    """The shard iterator expired; the consumer asks for a new one after the last position."""
