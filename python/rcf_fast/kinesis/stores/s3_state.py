"""S3 state store: one object per consumer, replaced with a conditional write.

``load`` remembers the object's ETag; ``save`` writes with ``If-Match: <that ETag>`` (or
``If-None-Match: *`` when there was no object), and remembers the new ETag. If another process
wrote the object in between, S3 answers 412 PreconditionFailed (or 409
ConditionalRequestConflict for a concurrent write) and ``save`` raises ``ConflictError``: the
other owner's state is kept, never overwritten, and this process must stop working on the
shard(s) the state covers.
"""

from __future__ import annotations

from typing import Any

from rcf_fast.kinesis.errors import ConflictError

CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class S3StateStore:
    """The state blob at ``s3://bucket/key``, with optimistic concurrency on its ETag."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.etag: str | None = None  # ETag of the version last loaded or saved
        self.loaded = False

    def load(self) -> bytes | None:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except self.client.exceptions.NoSuchKey:
            self.etag, self.loaded = None, True
            return None
        data = bytes(resp["Body"].read())
        self.etag, self.loaded = resp.get("ETag"), True
        return data

    def save(self, data: bytes) -> None:
        if not self.loaded:
            # Saving without having loaded: take the current version as the one we replace.
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self.key)
                self.etag = head.get("ETag")
            except Exception as exc:
                if _code(exc) not in ("404", "NoSuchKey", "NotFound"):
                    raise
                self.etag = None
            self.loaded = True
        condition = {"IfMatch": self.etag} if self.etag else {"IfNoneMatch": "*"}
        try:
            resp = self.client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=data,
                ContentType="application/octet-stream",
                **condition,
            )
        except Exception as exc:
            code = _code(exc)
            if code in CONFLICT_CODES or (self.etag and code in ("NoSuchKey", "404")):
                raise ConflictError(
                    f"state s3://{self.bucket}/{self.key} was written by another process since "
                    f"this one loaded it ({code}); not overwriting it"
                ) from None
            raise
        self.etag = resp.get("ETag")
