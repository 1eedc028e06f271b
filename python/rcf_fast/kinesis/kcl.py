"""A KCL v3 record processor (the ``amazon_kclpy`` interface; ``kclpy-ext`` ships the KCL jars).

The KCL's MultiLangDaemon runs one such process per shard and talks to it over stdin/stdout, so
nothing here may print to stdout: logs go to stderr, results to files or streams. The KCL owns
leases and checkpoints; this processor keeps the forests of its shard in a state store (one per
shard) and persists them before each checkpoint, so a replay after a failover is skipped, not
learned twice. KPL aggregates arrive deaggregated by the KCL, with sub-sequence numbers.

Run as ``executableName`` of the KCL properties: ``python -m rcf_fast.kinesis.kcl``, configured
by the ``RCF_*`` variables of ``ScorerConfig.from_env`` plus RCF_OUTPUT / RCF_ERRORS (JSON-lines
paths, ``{shard_id}`` expanded), RCF_OUTPUT_STREAM / RCF_ERROR_STREAM, RCF_MIN_SCORE,
RCF_STATE (per-key state: a directory, ``s3://bucket/prefix`` or ``dynamodb://table/id``;
``{shard_id}`` expanded, but leave it out so that keys find their forests after a reshard;
default: the directory ``rcf-kcl-state`` shared by the shards' processors),
RCF_ENDPOINT_URL and RCF_CHECKPOINT_INTERVAL (seconds).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, Callable

from rcf_fast.kinesis.aws import client_config
from rcf_fast.kinesis.config import ScorerConfig, build_step
from rcf_fast.kinesis.errors import ConfigError, ConflictError
from rcf_fast.kinesis.keystate import KeyedStateStore, open_state_store
from rcf_fast.kinesis.records import RawRecord
from rcf_fast.kinesis.sinks import JsonLinesSink, KinesisSink, Sink
from rcf_fast.kinesis.step import ScoringStep
from rcf_fast.kinesis.stores.file_state import FileStateStore, StateStore
from rcf_fast.kinesis.stores.records import DirRecords

try:  # the KCL's Python side; only needed when run under the MultiLangDaemon
    from amazon_kclpy.v3.processor import RecordProcessorBase
except ImportError:  # pragma: no cover - kclpy-ext not installed
    RecordProcessorBase = object  # type: ignore[misc,assignment]

log = logging.getLogger("rcf_fast.kinesis.kcl")
RETRYABLE_CHECKPOINT_ERRORS = ("ThrottlingException",)
DEFAULT_STATE_DIR = "rcf-kcl-state"


class RcfRecordProcessor(RecordProcessorBase):  # type: ignore[misc,valid-type]
    """Scores the records of one shard; checkpoints only what the saved state covers.

    Parameters
    ----------
    make_step : callable
        ``shard_id -> ScoringStep``.
    state_for_shard : callable
        ``shard_id -> StateStore``.
    checkpoint_interval : float
        Seconds between persists (flush sinks, save state, checkpoint).
    """

    def __init__(
        self,
        make_step: Callable[[str], ScoringStep],
        state_for_shard: Callable[[str], StateStore | KeyedStateStore],
        checkpoint_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.make_step = make_step
        self.state_for_shard = state_for_shard
        self.checkpoint_interval = checkpoint_interval
        self.clock = clock
        self.sleep = sleep
        self.shard_id = ""
        self.step: ScoringStep | None = None
        self.store: StateStore | KeyedStateStore | None = None
        self.last: tuple | None = None  # (sequence number, sub-sequence number) last processed
        self.last_persist = 0.0

    def initialize(self, initialize_input: Any) -> None:
        self.shard_id = initialize_input.shard_id
        self.step = self.make_step(self.shard_id)
        self.store = self.state_for_shard(self.shard_id)
        if isinstance(self.store, KeyedStateStore):
            self.step.attach_state(self.store)
        else:
            data = self.store.load()
            if data:
                self.step.load_state(data)
        self.last_persist = self.clock()
        log.info("shard %s: initialized at %s", self.shard_id, initialize_input.sequence_number)

    def process_records(self, process_records_input: Any) -> None:
        if self.step is None:
            return  # the state was taken over by another worker: do nothing, checkpoint nothing
        records = [
            RawRecord(
                self.shard_id,
                r.sequence_number,
                r.binary_data,
                r.partition_key or "",
                _epoch(r.approximate_arrival_timestamp),
                r.sub_sequence_number,
            )
            for r in process_records_input.records
        ]
        if records:
            self.step.process(records)
            self.last = (records[-1].sequence_number, records[-1].sub_sequence_number)
        if self.last is not None and self.clock() - self.last_persist >= self.checkpoint_interval:
            self._persist(process_records_input.checkpointer, *self.last)

    def _persist(
        self,
        checkpointer: Any,
        sequence_number: str | None = None,
        sub_sequence_number: int | None = None,
    ) -> None:
        assert self.step is not None and self.store is not None
        self.step.flush()
        try:
            if isinstance(self.store, KeyedStateStore):
                self.step.save_state()  # changed keys, then this shard's position
            else:
                self.store.save(self.step.state_bytes())
        except ConflictError as exc:
            # Another worker saved this shard's state: keep it, checkpoint nothing, stop here.
            log.error("shard %s: %s; stopping this shard", self.shard_id, exc)
            self.step = None
            return
        for attempt in range(5):
            try:
                checkpointer.checkpoint(sequence_number, sub_sequence_number)
                break
            except Exception as exc:  # noqa: BLE001 - amazon_kclpy raises CheckpointError(Exception)
                value = getattr(exc, "value", str(exc))
                if value in RETRYABLE_CHECKPOINT_ERRORS and attempt < 4:
                    self.sleep(0.2 * 2**attempt)
                    continue
                # ShutdownException / InvalidStateException: the lease is gone; the state is saved,
                # so whoever owns the shard next skips what we applied.
                log.warning("shard %s: checkpoint failed: %s", self.shard_id, value)
                break
        self.last_persist = self.clock()

    def lease_lost(self, lease_lost_input: Any) -> None:
        # No checkpoint is possible any more, and the new owner may already have loaded the state:
        # do not save it (the new owner replays from the last checkpoint instead).
        log.info("shard %s: lease lost", self.shard_id)
        self.step = None

    def shard_ended(self, shard_ended_input: Any) -> None:
        if self.step is None:
            return
        # Checkpointing with no sequence number at SHARD_END lets the KCL start the child shards.
        self._persist(shard_ended_input.checkpointer)
        log.info("shard %s: ended", self.shard_id)

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        if self.step is not None and self.last is not None:
            self._persist(shutdown_requested_input.checkpointer, *self.last)


def _epoch(value: Any) -> float | None:
    """amazon_kclpy gives the arrival time as a datetime (older versions: epoch milliseconds)."""
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value) / 1000.0


def _store_from_spec(spec: str, endpoint: str | None) -> StateStore:
    """The previous release's whole-blob store of a spec (kept for callers)."""
    if spec.startswith("s3://"):
        import boto3

        from rcf_fast.kinesis.stores.s3_state import S3StateStore

        bucket, _, key = spec[5:].partition("/")
        return S3StateStore(
            boto3.client("s3", endpoint_url=endpoint, config=client_config()), bucket, key
        )
    if spec.startswith("dynamodb://"):
        import boto3

        from rcf_fast.kinesis.stores.dynamodb_state import DynamoDBStateStore

        table, _, state_id = spec[11:].partition("/")
        return DynamoDBStateStore(
            boto3.client("dynamodb", endpoint_url=endpoint, config=client_config()), table, state_id
        )
    return FileStateStore(spec)


def processor_from_env(env: Mapping[str, str] | None = None) -> RcfRecordProcessor:
    """Build the processor from ``RCF_*`` environment variables (see the module docstring)."""
    env = os.environ if env is None else env
    cfg = ScorerConfig.from_env(env)
    endpoint = env.get("RCF_ENDPOINT_URL") or None
    min_score = float(env["RCF_MIN_SCORE"]) if env.get("RCF_MIN_SCORE") else None
    for name in ("RCF_OUTPUT", "RCF_ERRORS"):
        if env.get(name) == "-":
            raise ConfigError(
                f"{name}='-': stdout belongs to the KCL MultiLangDaemon protocol; use a file"
            )

    def sinks(shard_id: str) -> tuple:
        results: Sink
        errors: Sink
        if env.get("RCF_OUTPUT_STREAM"):
            import boto3

            results = KinesisSink(
                boto3.client("kinesis", endpoint_url=endpoint, config=client_config()),
                env["RCF_OUTPUT_STREAM"],
                min_score,
            )
        else:
            results = JsonLinesSink(
                env.get("RCF_OUTPUT", "rcf-kcl-results-{shard_id}.jsonl").format(shard_id=shard_id),
                min_score,
            )
        if env.get("RCF_ERROR_STREAM"):
            import boto3

            errors = KinesisSink(
                boto3.client("kinesis", endpoint_url=endpoint, config=client_config()),
                env["RCF_ERROR_STREAM"],
                partition_key_field="shard_id",
            )
        else:
            errors = JsonLinesSink(
                env.get("RCF_ERRORS", "rcf-kcl-errors-{shard_id}.jsonl").format(shard_id=shard_id)
            )
        return results, errors

    def make_step(shard_id: str) -> ScoringStep:
        results, errors = sinks(shard_id)
        return build_step(cfg, results, errors)

    def client(service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=endpoint, config=client_config())

    spec = env.get("RCF_STATE")

    def state_for_shard(shard_id: str) -> KeyedStateStore:
        if spec is None:
            # Every shard's processor shares one directory of per-key records, so keys find
            # their forests after a reshard; the previous release's per-shard blob migrates.
            return KeyedStateStore(
                DirRecords(DEFAULT_STATE_DIR),
                FileStateStore(os.path.join(DEFAULT_STATE_DIR, f"{shard_id}.state")),
            )
        return open_state_store(spec.format(shard_id=shard_id), client)

    return RcfRecordProcessor(
        make_step,
        state_for_shard,
        checkpoint_interval=float(env.get("RCF_CHECKPOINT_INTERVAL", "30")),
    )


def main() -> None:
    """Entry point for the MultiLangDaemon's ``executableName``."""
    logging.basicConfig(
        level=os.environ.get("RCF_LOG_LEVEL", "WARNING"),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from amazon_kclpy import kcl

    kcl.KCLProcess(processor_from_env()).run()


if __name__ == "__main__":
    main()
