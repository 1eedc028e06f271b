"""boto3 client settings shared by every adapter: botocore's ``standard`` retry mode
(exponential backoff with jitter on throttling, 5xx and connection errors; 10 attempts) and
bounded connect/read timeouts, so a throttled or briefly unreachable service is retried by the
client before the consumer's own backoff sees it."""

from __future__ import annotations

from typing import Any

RETRY_MODE = "standard"
MAX_ATTEMPTS = 10


def client_config(max_attempts: int = MAX_ATTEMPTS, mode: str = RETRY_MODE) -> Any:
    """A ``botocore.config.Config`` with retries and timeouts for our clients."""
    from botocore.config import Config

    return Config(
        retries={"mode": mode, "max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=60,
    )


def client(session_or_boto3: Any, service: str, endpoint_url: str | None = None) -> Any:
    """``session.client(service)`` with ``client_config()``."""
    return session_or_boto3.client(service, endpoint_url=endpoint_url, config=client_config())
