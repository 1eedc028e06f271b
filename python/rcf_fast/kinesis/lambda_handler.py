"""A helper for AWS Lambda functions triggered by Kinesis (with ReportBatchItemFailures).

Records are applied in order through the scoring step. Bad records go to the error sink and
count as processed. If anything else fails at a record, processing stops there, the state
covering the records before it is saved, and the response names that record in
``batchItemFailures`` so Lambda retries from it; records already applied are skipped on retry.

State: one ``StateStore`` per shard (``state_for_shard(shard_id)``), because Lambda runs the
shards of a stream concurrently. After a reshard the child shards start new forests.
"""

from __future__ import annotations

import base64
import logging
from typing import Any, Callable

from rcf_fast.kinesis.config import ScorerConfig, build_step
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
        self, make_step: Callable[[], ScoringStep], state_for_shard: Callable[[str], StateStore]
    ) -> None:
        self.make_step = make_step
        self.state_for_shard = state_for_shard
        self.steps: dict[str, ScoringStep] = {}
        self.stores: dict[str, StateStore] = {}

    def _step(self, shard_id: str) -> ScoringStep:
        if shard_id not in self.steps:
            step = self.make_step()
            store = self.state_for_shard(shard_id)
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
        failed: RawRecord | None = None
        try:
            step = self._step(shard_id)
        except Exception:
            log.exception("loading the state of shard %s failed", shard_id)
            return {"batchItemFailures": [{"itemIdentifier": records[0].sequence_number}]}
        for rec in records:
            try:
                step.process([rec])
            except Exception:
                log.exception(
                    "record %s of shard %s failed; stopping the batch there",
                    rec.sequence_number,
                    shard_id,
                )
                failed = rec
                break
        try:
            step.flush()
            self.stores[shard_id].save(step.state_bytes())
        except Exception:
            # Nothing of this batch is durable: drop the in-memory step and retry the whole batch.
            log.exception("saving results/state of shard %s failed", shard_id)
            self.steps.pop(shard_id, None)
            return {"batchItemFailures": [{"itemIdentifier": records[0].sequence_number}]}
        if failed is not None:
            # The step may hold part of the failed record; reload from the saved state next time.
            self.steps.pop(shard_id, None)
            return {"batchItemFailures": [{"itemIdentifier": failed.sequence_number}]}
        return {"batchItemFailures": []}


def make_lambda_handler(
    config: ScorerConfig,
    state_for_shard: Callable[[str], StateStore],
    results: Callable[[], Sink],
    errors: Callable[[], Sink],
) -> Callable[..., dict[str, Any]]:
    """A ``handler(event, context)`` for a Lambda function.

    ``results`` and ``errors`` build the sinks (e.g. ``lambda: KinesisSink(client, "alerts", 2.0)``).
    """
    scorer = LambdaScorer(lambda: build_step(config, results(), errors()), state_for_shard)

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        return scorer.handle(event, context)

    handler.scorer = scorer  # type: ignore[attr-defined]
    return handler
