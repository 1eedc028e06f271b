"""A helper for AWS Lambda functions triggered by Kinesis (with ReportBatchItemFailures).

Records are applied in order through the scoring step. A record's content never fails the
batch: bad records and events go to the error sink and count as processed (the step contains
whatever the content raises). ``batchItemFailures`` are for infrastructure faults only (a
sink, the state store): then nothing of the batch is saved, the response names its first
record and Lambda retries the whole batch. Records already applied are skipped on retry.

The schema (when not configured) is discovered from the whole batch, as the other adapters do,
not from its first record.

State: ``state_for_shard(shard_id)`` gives each shard's store, because Lambda runs the shards
of a stream concurrently. With a per-key store (``keystate.KeyedStateStore``, what
``handler_from_env`` uses) the shards share one set of per-key records and keep their own
positions: after a reshard the child shards find their keys' forests; only changed keys are
written per invocation. A whole-blob ``StateStore`` per shard still works (the child shards of a
reshard then start new forests).
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping
from typing import Any, Callable

from rcf_fast.kinesis.config import ScorerConfig, build_step
from rcf_fast.kinesis.keystate import KeyedStateStore
from rcf_fast.kinesis.records import RawRecord
from rcf_fast.kinesis.sinks import Sink
from rcf_fast.kinesis.step import ScoringStep
from rcf_fast.kinesis.stores.file_state import StateStore

log = logging.getLogger("rcf_fast.kinesis")


def raw_record(event_record: dict[str, Any]) -> RawRecord:
    """A Lambda Kinesis event record as a ``RawRecord`` (shard id from ``eventID``)."""
    kin = event_record["kinesis"]
    shard_id = str(event_record.get("eventID", "")).split(":", 1)[0]
    return RawRecord(
        shard_id,
        str(kin["sequenceNumber"]),
        base64.b64decode(kin["data"]),
        kin.get("partitionKey", ""),
        kin.get("approximateArrivalTimestamp"),
    )


class LambdaScorer:
    """Keeps one scoring step per shard across warm invocations.

    Parameters
    ----------
    make_step : callable
        Builds a fresh ``ScoringStep`` (called once per shard per container).
    state_for_shard : callable
        ``shard_id -> StateStore``.
    """

    def __init__(
        self,
        make_step: Callable[[], ScoringStep],
        state_for_shard: Callable[[str], StateStore | KeyedStateStore],
    ) -> None:
        self.make_step = make_step
        self.state_for_shard = state_for_shard
        self.steps: dict[str, ScoringStep] = {}
        self.stores: dict[str, StateStore | KeyedStateStore] = {}

    def _step(self, shard_id: str) -> ScoringStep:
        if shard_id not in self.steps:
            step = self.make_step()
            store = self.state_for_shard(shard_id)
            if isinstance(store, KeyedStateStore):
                step.attach_state(store)
            else:
                data = store.load()
                if data:
                    step.load_state(data)
            self.steps[shard_id], self.stores[shard_id] = step, store
        return self.steps[shard_id]

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, list[dict[str, str]]]:
        records = [raw_record(r) for r in event.get("Records", [])]
        if not records:
            return {"batchItemFailures": []}
        shard_id = records[0].shard_id
        try:
            step = self._step(shard_id)
        except Exception:
            log.exception("loading the state of shard %s failed", shard_id)
            return {"batchItemFailures": [{"itemIdentifier": records[0].sequence_number}]}
        try:
            step.discover(records)
            step.process(records)
            step.flush()
            store = self.stores[shard_id]
            if isinstance(store, KeyedStateStore):
                step.save_state()
            else:
                store.save(step.state_bytes())
        except Exception:
            # An infrastructure fault (a sink, the state store): nothing of this batch is
            # durable. The step may hold part of a record, so drop it (the next invocation
            # reloads the saved state) and have Lambda retry the whole batch; records applied
            # by an earlier invocation are skipped then.
            log.exception("shard %s: the batch failed; Lambda retries it", shard_id)
            self.steps.pop(shard_id, None)
            for sink in (step.results, step.errors):
                try:
                    sink.discard()
                except Exception:
                    log.debug("could not discard a sink's buffer", exc_info=True)
            return {"batchItemFailures": [{"itemIdentifier": records[0].sequence_number}]}
        return {"batchItemFailures": []}


def make_lambda_handler(
    config: ScorerConfig,
    state_for_shard: Callable[[str], StateStore | KeyedStateStore],
    results: Callable[[], Sink],
    errors: Callable[[], Sink],
) -> Callable[..., dict[str, Any]]:
    """A ``handler(event, context)`` for a Lambda function.

    ``results`` and ``errors`` build the sinks, e.g.
    ``lambda: KinesisSink(client, "alerts", 2.0)``.
    """
    scorer = LambdaScorer(lambda: build_step(config, results(), errors()), state_for_shard)

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        return scorer.handle(event, context)

    handler.scorer = scorer  # type: ignore[attr-defined]
    return handler


def handler_from_env(env: Mapping[str, str] | None = None) -> Callable[..., dict[str, Any]]:
    """A handler configured by environment variables, for ``handler = rcf_fast...handler``.

    ``ScorerConfig.from_env`` variables (RCF_FORMAT, RCF_KEY, RCF_FIELDS, RCF_FOREST, ...) plus:
    RCF_STATE (``s3://bucket/prefix`` or ``dynamodb://table``; one object/item per shard),
    RCF_OUTPUT_STREAM and RCF_ERROR_STREAM (default: results and errors logged as JSON lines to
    stdout, i.e. CloudWatch Logs), RCF_MIN_SCORE and RCF_ENDPOINT_URL.
    """
    import boto3

    from rcf_fast.kinesis.aws import client_config
    from rcf_fast.kinesis.errors import ConfigError
    from rcf_fast.kinesis.sinks import JsonLinesSink, KinesisSink
    from rcf_fast.kinesis.stores.dynamodb_state import DynamoDBStateStore
    from rcf_fast.kinesis.stores.records import DynamoDBRecords, S3Records
    from rcf_fast.kinesis.stores.s3_state import S3StateStore

    env = os.environ if env is None else env
    config = ScorerConfig.from_env(env)
    endpoint = env.get("RCF_ENDPOINT_URL") or None
    min_score = float(env["RCF_MIN_SCORE"]) if env.get("RCF_MIN_SCORE") else None
    spec = env.get("RCF_STATE", "")
    # Per-key records shared by the shards (each shard has its own position record); the
    # previous release's per-shard blob (same spec) is migrated by the first save.
    if spec.startswith("s3://"):
        bucket, _, prefix = spec[5:].partition("/")
        s3 = boto3.client("s3", endpoint_url=endpoint, config=client_config())
        s3_records = S3Records(s3, bucket, prefix.rstrip("/") + "/" if prefix else "")

        def state_for_shard(shard_id: str) -> StateStore | KeyedStateStore:
            legacy = S3StateStore(s3, bucket, f"{prefix.rstrip('/')}/{shard_id}".lstrip("/"))
            return KeyedStateStore(s3_records, legacy)
    elif spec.startswith("dynamodb://"):
        table = spec[11:]
        ddb = boto3.client("dynamodb", endpoint_url=endpoint, config=client_config())
        ddb_records = DynamoDBRecords(ddb, table, "rcf-keys/")

        def state_for_shard(shard_id: str) -> StateStore | KeyedStateStore:
            return KeyedStateStore(ddb_records, DynamoDBStateStore(ddb, table, shard_id))
    else:
        raise ConfigError(f"RCF_STATE {spec!r}: expected s3://bucket/prefix or dynamodb://table")

    def results() -> Sink:
        if env.get("RCF_OUTPUT_STREAM"):
            kinesis = boto3.client("kinesis", endpoint_url=endpoint, config=client_config())
            return KinesisSink(kinesis, env["RCF_OUTPUT_STREAM"], min_score)
        return JsonLinesSink("-", min_score)

    def errors() -> Sink:
        if env.get("RCF_ERROR_STREAM"):
            kinesis = boto3.client("kinesis", endpoint_url=endpoint, config=client_config())
            return KinesisSink(kinesis, env["RCF_ERROR_STREAM"], partition_key_field="shard_id")
        return JsonLinesSink("-")

    return make_lambda_handler(config, state_for_shard, results, errors)


_env_handler: Callable[..., dict[str, Any]] | None = None


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Ready-made Lambda entry point (``rcf_fast.kinesis.lambda_handler.handler``), see
    ``handler_from_env``; built on the first invocation and kept while the container is warm."""
    global _env_handler
    if _env_handler is None:
        _env_handler = handler_from_env()
    return _env_handler(event, context)
