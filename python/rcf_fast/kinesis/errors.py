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


class LimitError(DecodeError):
    """A record (or one event of it) is over one of the configured ``Limits``.

    ``limit`` is the name of the ``Limits`` attribute (``max_json_depth``, ...); the reason says
    the limit's value and the ``rcf-fast consume`` option that raises it.
    """

    def __init__(self, limit: str, value: int, what: str) -> None:
        option = "--" + limit.replace("_", "-")
        super().__init__(f"{what}: over the limit {limit}={value} ({option})")
        self.limit = limit


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


class ServiceError(TransientError):
    """A transient service fault (HTTP 5xx, connection reset, timeout) after the client's retries."""


class ThrottledError(TransientError):
    """The service throttled a call (ProvisionedThroughputExceeded, LimitExceeded)."""


class ExpiredIteratorError(TransientError):
    """The shard iterator expired; the consumer asks for a new one after the last position."""


# Error codes of AWS services that mean "try again later" (throttling, overload, 5xx).
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "KMSThrottlingException",
        "SlowDown",
        "RequestThrottled",
        "RequestThrottledException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "TransactionInProgressException",
    }
)
_CONNECTION_ERRORS = frozenset(
    {
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "ProxyConnectionError",
        "ResponseStreamingError",
    }
)


def is_transient(exc: BaseException) -> bool:
    """Whether an infrastructure call that raised ``exc`` may succeed if retried later:
    our ``TransientError``, an AWS throttling or 5xx answer, a connection error or timeout."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, (ConflictError, ConfigError, StateError)):
        return False
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in TRANSIENT_CODES or int(status) >= 500
    if any(cls.__name__ in _CONNECTION_ERRORS for cls in type(exc).__mro__):
        return True
    return isinstance(exc, (ConnectionError, TimeoutError))
