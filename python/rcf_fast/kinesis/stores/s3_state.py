"""S3 state store: one object per consumer (PutObject replaces it atomically)."""

from __future__ import annotations

from typing import Any


class S3StateStore:
    """The state blob at ``s3://bucket/key``."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key

    def load(self) -> bytes | None:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except self.client.exceptions.NoSuchKey:
            return None
        return bytes(resp["Body"].read())

    def save(self, data: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self.key, Body=data, ContentType="application/octet-stream"
        )
