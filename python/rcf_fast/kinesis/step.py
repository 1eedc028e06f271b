"""The scoring step every adapter feeds: decode -> key and values -> score-then-learn -> emit.

Idempotency: ``KeyedForests.positions`` keeps, per shard, the last applied (sequence number,
sub-sequence number, event index). An event at or before that position was applied (learned, or
sent to the error sink) before the state was persisted, and its output was flushed before that,
so it is skipped: replayed records are never learned twice. Records of a shard must arrive in
order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rcf_fast.kinesis.decoders.base import Decoder
from rcf_fast.kinesis.decoders.csv_decoder import CsvDecoder
from rcf_fast.kinesis.errors import ConfigError, DecodeError
from rcf_fast.kinesis.forests import KeyedForests
from rcf_fast.kinesis.records import ErrorRecord, Event, EventFailure, RawRecord, ScoreResult
from rcf_fast.kinesis.schema import (
    PARTITION_KEY,
    Schema,
    discover_schema,
    parse_fields,
    to_float,
)
from rcf_fast.kinesis.sinks import MemorySink, Sink

log = logging.getLogger("rcf_fast.kinesis")
DEFAULT_KEY = "default"


def _csv_decoder(decoder: Any) -> CsvDecoder | None:
    """The CSV line decoder inside a record decoder (plain, CloudWatch Logs or KPL), if any."""
    inner = getattr(decoder, "line_decoder", None) or getattr(decoder, "inner", None)
    return inner if isinstance(inner, CsvDecoder) else None


@dataclass
class StepStats:
    """Counters; ``scored + errors`` equals the events and failed records applied."""

    records: int = 0
    events: int = 0
    scored: int = 0
    errors: int = 0
    skipped: int = 0
    anomalies: int = 0

    def add(self, other: StepStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class ScoringStep:
    """Decode, extract, score-then-learn, emit.

    Parameters
    ----------
    decoder : Decoder
        Record decoder (see ``make_decoder``).
    forest_params : dict
        ``RandomCutForest`` keyword arguments except ``dimensions`` (the value-field count).
    key_field : str, optional
        Field naming the series; ``"@partition_key"`` uses the Kinesis partition key; None puts
        every event in one series called ``"default"``.
    value_fields : list of str, optional
        Fields fed to the forest, in order. Without them the numeric fields of ``schema``, or of
        a schema discovered from the first ``sample_size`` events, are used (then persisted).
    results, errors : Sink
        Where results and errors go.
    anomaly_threshold : float
        Results scoring at least this count as anomalies in the stats.
    """

    def __init__(
        self,
        decoder: Decoder,
        forest_params: dict[str, Any],
        *,
        key_field: str | None = None,
        value_fields: Sequence[str] | None = None,
        schema: Schema | None = None,
        results: Sink | None = None,
        errors: Sink | None = None,
        forests: KeyedForests | None = None,
        sample_size: int = 100,
        anomaly_threshold: float = 2.0,
        timestamp_field: str | None = None,
    ) -> None:
        self.decoder = decoder
        self.forests = forests if forests is not None else KeyedForests(forest_params)
        self.key_field = key_field
        self.timestamp_field = timestamp_field
        self.schema = schema
        self.value_fields = list(value_fields) if value_fields else None
        if self.value_fields is None and schema is not None:
            self._adopt_schema(schema)
        self.results = results if results is not None else MemorySink()
        self.errors = errors if errors is not None else MemorySink()
        self.sample_size = sample_size
        self.anomaly_threshold = anomaly_threshold
        self.stats = StepStats()

    # -- configuration --------------------------------------------------------------------------

    def _adopt_schema(self, schema: Schema) -> None:
        exclude = [self.key_field] if self.key_field else []
        names = schema.numeric_names(exclude)
        if not names:
            raise ConfigError(
                f"schema {schema.to_spec()!r} has no numeric field to score; pass --fields"
            )
        self.schema = schema
        self.value_fields = names
        if self.timestamp_field is None:
            self.timestamp_field = next(
                (f.name for f in schema.fields if f.type == "timestamp"), None
            )

    def load_state(self, data: bytes) -> None:
        """Restore forests and positions; a state's value fields win over discovery."""
        self.forests.load_bytes(data)
        if self.forests.value_fields:
            if self.value_fields and list(self.value_fields) != self.forests.value_fields:
                raise ConfigError(
                    f"state scores fields {self.forests.value_fields}, "
                    f"now configured {self.value_fields}"
                )
            self.value_fields = list(self.forests.value_fields)
        if self.forests.schema_spec and self.schema is None:
            # Restore a discovered schema, including CSV column names taken from a header.
            self.schema = parse_fields(self.forests.schema_spec)
            csv = _csv_decoder(self.decoder)
            if csv is not None and csv.columns is None:
                csv.columns = csv.header = self.schema.names
            if self.timestamp_field is None:
                self.timestamp_field = next(
                    (f.name for f in self.schema.fields if f.type == "timestamp"), None
                )

    def state_bytes(self) -> bytes:
        self.forests.value_fields = self.value_fields
        self.forests.schema_spec = self.schema.to_spec() if self.schema else None
        return self.forests.to_bytes()

    def flush(self) -> None:
        """Deliver buffered results and errors (call before persisting the state)."""
        self.results.flush()
        self.errors.flush()

    # -- processing -----------------------------------------------------------------------------

    def _discover(self, records: Sequence[RawRecord]) -> None:
        sample: list[dict] = []
        for rec in records:
            try:
                decoded = self.decoder.decode(rec.data)
            except DecodeError:
                continue
            sample.extend(e.fields for e in decoded if isinstance(e, Event))
            if len(sample) >= self.sample_size:
                break
        if sample:
            sample = self._csv_header(sample[: self.sample_size])
            schema = discover_schema(sample)
            self._adopt_schema(schema)
            log.info("discovered schema %s; scoring fields %s", schema.to_spec(), self.value_fields)

    def _csv_header(self, sample: list[dict]) -> list[dict]:
        """If CSV columns are unnamed and the first row reads as a header, name them after it.

        A header row is all text where the other rows have a numeric column; later copies of
        the header line then go to the error sink as "CSV header line, not data".
        """
        csv = _csv_decoder(self.decoder)
        if csv is None or csv.columns is not None or len(sample) < 2:
            return sample
        first = list(sample[0].values())
        rest = discover_schema(sample[1:])
        numeric = [f.type in ("int", "float") for f in rest.fields]
        texts = [discover_schema([{"x": v}]).fields[0].type == "str" for v in first]
        if len(first) != len(numeric) or not all(texts) or not any(numeric):
            return sample
        names = [str(v).strip() for v in first]
        if len(set(names)) != len(names) or not all(names):
            return sample
        csv.columns, csv.header = names, names
        return [dict(zip(names, row.values())) for row in sample[1:]]

    def process(self, records: Sequence[RawRecord]) -> StepStats:
        """Apply records of one or more shards, each shard's records in sequence order."""
        if self.value_fields is None:
            self._discover(records)
        stats = StepStats()
        for rec in records:
            self._process_record(rec, stats)
        self.stats.add(stats)
        return stats

    @staticmethod
    def _sub(rec: RawRecord, event_index: int) -> int:
        # A KCL user record is identified by its own sub-sequence number; otherwise by event index.
        return rec.sub_sequence_number if rec.sub_sequence_number is not None else event_index

    def _error(
        self,
        rec: RawRecord,
        reason: str,
        event_index: int,
        stats: StepStats,
        detail: str | None = None,
    ) -> None:
        err = ErrorRecord(
            reason, rec.data, rec.shard_id, rec.sequence_number, self._sub(rec, event_index), detail
        )
        out = err.to_dict()
        if rec.sub_sequence_number is not None and event_index:
            out["event_index"] = event_index
        self.errors.write(out)
        stats.errors += 1

    def _process_record(self, rec: RawRecord, stats: StepStats) -> None:
        seq = int(rec.sequence_number)
        sub = rec.sub_sequence_number or 0
        last = self.forests.positions.get(rec.shard_id)
        if last is not None and (seq, sub) < last[:2]:
            stats.skipped += 1
            return
        stats.records += 1
        try:
            decoded = self.decoder.decode(rec.data)
        except DecodeError as exc:
            decoded = [EventFailure(0, exc.reason)]
        if not decoded:  # e.g. a CloudWatch Logs CONTROL_MESSAGE: nothing to score
            self._advance(rec.shard_id, (seq, sub, 0))
            return
        for item in decoded:
            pos = (seq, sub, item.sub_sequence_number)
            if last is not None and pos <= last:
                stats.skipped += 1
                continue
            stats.events += 1
            if isinstance(item, EventFailure):
                self._error(rec, item.reason, item.sub_sequence_number, stats, item.detail)
            else:
                try:
                    self._score(rec, item, stats)
                except DecodeError as exc:
                    self._error(rec, exc.reason, item.sub_sequence_number, stats)
            self._advance(rec.shard_id, pos)

    def _advance(self, shard_id: str, pos: tuple[int, int, int]) -> None:
        last = self.forests.positions.get(shard_id)
        if last is None or pos > last:
            self.forests.positions[shard_id] = pos

    def _score(self, rec: RawRecord, event: Event, stats: StepStats) -> None:
        fields = event.fields
        if self.value_fields is None:
            raise DecodeError("no schema yet: no record of the first batch decoded; pass --fields")
        if self.key_field is None:
            key = DEFAULT_KEY
        elif self.key_field == PARTITION_KEY:
            key = rec.partition_key
        else:
            raw_key = fields.get(self.key_field)
            if raw_key is None or raw_key == "":
                raise DecodeError(f"missing key field {self.key_field!r}")
            key = str(raw_key)
        values = {name: to_float(name, fields.get(name)) for name in self.value_fields}
        point = np.fromiter(values.values(), dtype=np.float64, count=len(values))
        forest = self.forests.get(key, len(point))
        try:
            attribution = forest.attribution(point)
            score = float(forest.score_update(point))
        except (ValueError, TypeError) as exc:
            # The forest is unchanged after a rejected call (contract), so this is a plain error.
            raise DecodeError(f"forest rejected the point: {exc}") from None
        ts: Any = event.timestamp
        if self.timestamp_field and self.timestamp_field in fields:
            ts = fields[self.timestamp_field]
        elif ts is None and rec.arrival_timestamp is not None:
            ts = rec.arrival_timestamp
        result = ScoreResult(
            key,
            rec.shard_id,
            rec.sequence_number,
            self._sub(rec, event.sub_sequence_number),
            score,
            self._attribution(attribution, len(point)),
            values,
            ts,
        )
        out = result.to_dict()
        if rec.sub_sequence_number is not None and event.sub_sequence_number:
            out["event_index"] = event.sub_sequence_number
        self.results.write(out)
        stats.scored += 1
        if score >= self.anomaly_threshold:
            stats.anomalies += 1

    def _attribution(self, attribution: Any, dims: int) -> dict[str, dict[str, float]]:
        high = np.asarray(attribution.high, dtype=np.float64).ravel()
        low = np.asarray(attribution.low, dtype=np.float64).ravel()
        if high.size != dims and high.size % dims == 0:
            # Shingled attribution (one entry per shingle slot and dimension): fold onto fields.
            high = high.reshape(-1, dims).sum(axis=0)
            low = low.reshape(-1, dims).sum(axis=0)
        assert self.value_fields is not None
        return {
            name: {"high": float(high[i]), "low": float(low[i])}
            for i, name in enumerate(self.value_fields)
        }
