"""The scoring step every adapter feeds: decode -> key and values -> score-then-learn -> emit.

Containment: whatever a record's content makes the decoders, the flattening, the number
parsing, the validation or the forest raise becomes an error entry for that event or record,
and processing goes on. Only the sinks' own failures (and ``BaseException``) leave ``process``:
those are infrastructure faults, for the adapter to retry.

Error entries are proportional to their input: a failed record's raw bytes are written once,
in its record-level entry (``kind: record``); when several events of one record fail, each
gets a short ``kind: event`` entry pointing at it (shard, sequence number, event index) with
an excerpt, up to ``Limits.max_event_errors`` entries or about twice the record's size, and
the rest are counted (``unlisted_errors``), not listed.

Idempotency: ``KeyedForests.positions`` keeps, per shard, the last applied (sequence number,
sub-sequence number, event index). An event at or before that position was applied (learned, or
sent to the error sink) before the state was persisted, and its output was flushed before that,
so it is skipped: replayed records are never learned twice. Records of a shard must arrive in
order.
"""

from __future__ import annotations

import base64
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rcf_fast._rcf import StateError as CoreStateError
from rcf_fast.kinesis.decoders.base import Decoder
from rcf_fast.kinesis.decoders.csv_decoder import CsvDecoder
from rcf_fast.kinesis.errors import ConfigError, DecodeError, StateError
from rcf_fast.kinesis.forests import ALERTS, EngineForests, KeyedForests, _Alerts
from rcf_fast.kinesis.limits import DEFAULT_LIMITS, Limits, excerpt
from rcf_fast.kinesis.records import Event, EventFailure, EventSkip, Position, RawRecord
from rcf_fast.kinesis.schema import (
    PARTITION_KEY,
    Schema,
    choose_value_fields,
    discover_schema,
    parse_fields,
    to_float,
)
from rcf_fast.kinesis.sinks import MemorySink, Sink

log = logging.getLogger("rcf_fast.kinesis")
DEFAULT_KEY = "default"
MAX_LOGGED_NEW_FIELDS = 100
PASSTHROUGH_ALL = "all"
EXPLAIN = ("anomalies", "always", "never")
# Raised by a damaged stored state (a key's record): infrastructure, never an event's error.
_STATE_ERRORS = (StateError, CoreStateError)


def reason_of(exc: BaseException) -> str:
    """A bounded one-line reason for an exception raised by a record's content."""
    if isinstance(exc, DecodeError):
        text = exc.reason
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:500] + "..."


def _csv_decoder(decoder: Any) -> CsvDecoder | None:
    """The CSV line decoder inside a record decoder (plain, CloudWatch Logs or KPL), if any."""
    inner = getattr(decoder, "line_decoder", None) or getattr(decoder, "inner", None)
    return inner if isinstance(inner, CsvDecoder) else None


@dataclass
class StepStats:
    """Counters; ``scored + errors`` equals the events and failed records applied.

    ``skipped`` counts replayed records/events and events with nothing to score (``no_data``:
    VPC flow NODATA/SKIPDATA lines, repeated CSV headers), which are neither scored nor errors.
    """

    records: int = 0
    events: int = 0
    scored: int = 0
    errors: int = 0
    skipped: int = 0
    anomalies: int = 0
    no_data: int = 0

    def add(self, other: StepStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _bump(positions: dict[str, Position], shard_id: str, pos: Position) -> None:
    last = positions.get(shard_id)
    if last is None or pos > last:
        positions[shard_id] = pos


class _Pending:
    """One event waiting for its score: extracted in phase one, scored in phase two."""

    __slots__ = (
        "alert",
        "attribution",
        "event",
        "failure",
        "grade",
        "key",
        "point",
        "pos",
        "rec",
        "score",
        "values",
    )

    def __init__(
        self, rec: RawRecord, event: Event, key: str, values: dict[str, float], point: np.ndarray
    ) -> None:
        self.rec = rec
        self.event = event
        self.key = key
        self.values = values
        self.point = point
        self.score = 0.0
        self.grade: float | None = None
        self.alert = False
        self.attribution: dict[str, dict[str, float]] | None = None
        self.failure: str | None = None
        self.pos: Position = (0, 0, 0)


class _RecordPlan:
    """A record's events in order: pending scores, or (index, reason, detail) failures."""

    __slots__ = ("items", "n_events", "rec")

    def __init__(self, rec: RawRecord, n_events: int) -> None:
        self.rec = rec
        self.n_events = n_events
        self.items: list[_Pending | tuple[int, str, str | None]] = []


class ScoringStep:
    """Decode, extract, score-then-learn, emit.

    Parameters
    ----------
    decoder : Decoder
        Record decoder (see ``make_decoder``).
    forest_params : dict
        ``RandomCutForest`` keyword arguments except ``dimensions`` (the value-field count).
    key_field : str, optional
        Field naming the series; ``"@partition_key"`` uses the Kinesis partition key (a KPL
        user record's own); None puts every event in one series called ``"default"``.
    value_fields : list of str, optional
        Fields fed to the forest, in order. Without them the numeric fields of ``schema``, or
        those a schema discovered from the first ``sample_size`` events has in at least
        ``min_presence`` of them (``choose_value_fields``), are used (then persisted).
    results, errors : Sink
        Where results and errors go.
    anomaly_threshold : float
        Without grading: results scoring at least this count as anomalies (stats, alerts).
    grading : bool or dict
        True (default): every key's scores go through its own ``rcf_fast.Thresholder`` (the
        ``AnomalyDetector``'s adaptive threshold: decayed score statistics, z-factor, floor,
        warm-up, one alert per episode); results carry ``grade`` (0..1, 0: not an anomaly) and
        ``is_anomaly``, and anomalies are those. A dict: the same with these ``Thresholder``
        parameters. False: no grades; anomalies are scores >= ``anomaly_threshold``. A key's
        thresholder is saved with its forest (per-key state or the whole-state blob).
    explain : "anomalies", "always" or "never"
        Which results carry an attribution (per value field, ``{"high", "low"}``: how much of
        the score comes from the value being above / below what the key's forest expects,
        computed before the event is learned). "anomalies" (default): with grading, every
        alert, plus the few results that score near their key's threshold (the engine is given
        a per-row lower bound of the threshold, ``EngineForests.alert_bounds``); without,
        results scoring at least ``anomaly_threshold``. "always": every result; "never": none. A result without one
        has ``"attribution": null``. The engine computes it only for those rows.
    forests : EngineForests or KeyedForests, optional
        The forests (default: an ``EngineForests`` over ``rcf_fast.KeyedForests``). A
        ``KeyedForests`` with a forest factory runs Python-side forests row by row (test
        doubles).
    limits : Limits
        Error-entry caps (the decoders hold their own copy of the limits).
    passthrough : list of str or "all", optional
        Input fields copied into each result under ``fields``.
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
        forests: EngineForests | KeyedForests | None = None,
        sample_size: int = 100,
        anomaly_threshold: float = 2.0,
        grading: bool | dict[str, Any] = True,
        explain: str = "anomalies",
        timestamp_field: str | None = None,
        limits: Limits | None = None,
        passthrough: Sequence[str] | str | None = None,
        min_presence: float = 0.9,
    ) -> None:
        if explain not in EXPLAIN:
            raise ConfigError(f"explain {explain!r}: expected one of {list(EXPLAIN)}")
        self.explain = explain
        self.decoder = decoder
        if grading is True:
            self.grading: dict[str, Any] | None = {}
        elif grading is False or grading is None:
            self.grading = None
        elif isinstance(grading, dict):
            self.grading = dict(grading)
        else:
            raise ConfigError(f"grading {grading!r}: expected True, False or a dict of parameters")
        # EngineForests or KeyedForests (typed Any: callers reach into either's own API).
        self.forests: Any = (
            forests if forests is not None else EngineForests(forest_params, grading=self.grading)
        )
        if isinstance(self.forests, EngineForests) and self.forests.grading != self.grading:
            if self.forests.grading is None and not self.forests.graders:
                self.forests.grading = self.grading
            else:
                raise ConfigError("forests were built with other grading parameters")
        self.key_field = key_field
        self.timestamp_field = timestamp_field
        self.schema = schema
        self.limits = limits or getattr(decoder, "limits", None) or DEFAULT_LIMITS
        self.min_presence = min_presence
        if passthrough is None or passthrough == PASSTHROUGH_ALL:
            self.passthrough: str | list[str] | None = passthrough
        else:
            names = [passthrough] if isinstance(passthrough, str) else list(passthrough)
            self.passthrough = PASSTHROUGH_ALL if names == [PASSTHROUGH_ALL] else names
        self.value_fields = list(value_fields) if value_fields else None
        self._known: set[str] | None = None
        self._new_logged = 0
        self._discovery_warned = False
        if self.value_fields is None and schema is not None:
            self._adopt_schema(schema)
        elif schema is not None:
            self._known = set(schema.names)
        self.results = results if results is not None else MemorySink()
        self.errors = errors if errors is not None else MemorySink()
        self.sample_size = sample_size
        self.anomaly_threshold = anomaly_threshold
        self.stats = StepStats()
        self._note_later: list[_Pending] = []

    # -- configuration --------------------------------------------------------------------------

    def _adopt_schema(self, schema: Schema, value_fields: list[str] | None = None) -> None:
        exclude = [self.key_field] if self.key_field else []
        names = value_fields if value_fields is not None else schema.numeric_names(exclude)
        if not names:
            raise ConfigError(
                f"schema {schema.to_spec()!r} has no numeric field to score; pass --fields"
            )
        self.schema = schema
        self.value_fields = names
        self._known = set(schema.names)
        if self.timestamp_field is None:
            self.timestamp_field = next(
                (f.name for f in schema.fields if f.type == "timestamp"), None
            )

    def load_state(self, data: bytes) -> None:
        """Restore forests and positions; a state's value fields win over discovery."""
        self.forests.load_bytes(data)
        self._restore(self.forests.value_fields, self.forests.schema_spec)

    def _restore(self, value_fields: list[str] | None, schema_spec: str | None) -> None:
        if value_fields:
            if self.value_fields and list(self.value_fields) != value_fields:
                raise ConfigError(
                    f"state scores fields {value_fields}, now configured {self.value_fields}"
                )
            self.value_fields = list(value_fields)
        if schema_spec and self.schema is None:
            # Restore a discovered schema, including CSV column names taken from a header.
            self.schema = parse_fields(schema_spec)
            self._known = set(self.schema.names)
            csv = _csv_decoder(self.decoder)
            if csv is not None and csv.columns is None:
                csv.columns = csv.header = self.schema.names
            if self.timestamp_field is None:
                self.timestamp_field = next(
                    (f.name for f in self.schema.fields if f.type == "timestamp"), None
                )

    def attach_state(self, store: Any) -> None:
        """Keep the forests per key in ``store`` (a ``keystate.KeyedStateStore``) and load what
        it holds: meta and shard positions now, each key's forest when the key is seen (a state
        of the previous release in ``store.legacy`` is loaded whole and migrated by the first
        ``save_state``)."""
        from rcf_fast.kinesis.keystate import KeyedState

        state = KeyedState(store.records)
        state.before_write = self._before_key_write
        forests = EngineForests(
            self.forests.params,
            state=state,
            memory_limit=store.memory_limit,
            max_keys=store.max_keys,
            grading=self.grading,
        )
        self.forests = forests
        if forests.load_keyed():
            self._restore(forests.value_fields, forests.schema_spec)
            return
        blob = store.legacy.load() if store.legacy is not None else None
        if blob:
            self.load_state(blob)
            for key, _ in self.forests:
                state.key_pos[key] = dict(self.forests.positions)

    def _before_key_write(self) -> None:
        # A key's record covers its events: their results and errors go out first.
        self.flush()
        save_meta = getattr(self.forests, "save_meta", None)
        if save_meta is not None:
            save_meta()

    def save_state(self) -> int:
        """Save the per-key state incrementally (after ``flush``; see ``attach_state``): the
        meta record if it changed, the keys changed since their last save, then the shard
        positions. Returns the number of keys written."""
        assert isinstance(self.forests, EngineForests) and self.forests.state is not None
        self.forests.value_fields = self.value_fields
        self.forests.schema_spec = self.schema.to_spec() if self.schema else None
        return self.forests.save_keyed()

    @property
    def keyed_state(self) -> bool:
        """True when the forests are kept per key in a record store (``attach_state``)."""
        return getattr(self.forests, "state", None) is not None

    def state_bytes(self) -> bytes:
        self.forests.value_fields = self.value_fields
        self.forests.schema_spec = self.schema.to_spec() if self.schema else None
        return self.forests.to_bytes()

    def flush(self) -> None:
        """Deliver buffered results and errors (call before persisting the state)."""
        self.results.flush()
        self.errors.flush()

    # -- discovery ------------------------------------------------------------------------------

    def discover(self, records: Sequence[RawRecord]) -> bool:
        """Discover the schema and value fields from the events of ``records`` (a batch) if
        they are not known yet; True once they are. Never raises for content."""
        if self.value_fields is not None:
            return True
        sample: list[dict] = []
        for rec in records:
            try:
                decoded = self.decoder.decode(rec.data)
            except Exception:  # noqa: BLE001, S112 - content; the record fails again when processed
                continue
            sample.extend(e.fields for e in decoded if isinstance(e, Event))
            if len(sample) >= self.sample_size:
                break
        if not sample:
            return False
        try:
            sample = self._csv_header(sample[: self.sample_size])
            schema = discover_schema(sample)
            exclude = [self.key_field] if self.key_field else []
            names = choose_value_fields(sample, schema, exclude, self.min_presence)
        except Exception as exc:  # noqa: BLE001 - a sample of hostile events
            log.warning("schema discovery failed on this batch: %s", reason_of(exc))
            return False
        if not names:
            if not self._discovery_warned:
                log.warning(
                    "no numeric field is present in %d%% of the %d sampled events (schema %s); "
                    "their events go to the error sink until a batch has one; pass --values",
                    round(self.min_presence * 100),
                    len(sample),
                    schema.to_spec()[:500],
                )
                self._discovery_warned = True
            return False
        self._adopt_schema(schema, names)
        log.info("discovered schema %s; scoring fields %s", schema.to_spec(), self.value_fields)
        return True

    # Kept for callers of the old private name.
    _discover = discover

    def _csv_header(self, sample: list[dict]) -> list[dict]:
        """If CSV columns are unnamed and the first row reads as a header, name them after it.

        A header row is all text where the other rows have a numeric column; later copies of
        the header row are skipped (counted as skipped, not errors).
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

    # -- processing -----------------------------------------------------------------------------

    def process(self, records: Sequence[RawRecord]) -> StepStats:
        """Apply records of one or more shards, each shard's records in sequence order.

        Two phases: every record is decoded and every event's key and values extracted (replays
        skipped, failures noted), then all scorable events go to the forests in one call
        (grouped per key by the engine, a key's events in order); then results and error entries
        are emitted in record order and the shard positions advance.
        """
        if self.value_fields is None:
            self.discover(records)
        stats = StepStats()
        plans: list[_RecordPlan] = []
        pending: list[_Pending] = []
        positions = dict(self.forests.positions)
        for rec in records:
            plan = self._plan_record(rec, stats, positions, pending)
            if plan is not None:
                plans.append(plan)
        for part in self._parts(plans):
            self._score_pending([i for plan in part for i in plan.items if isinstance(i, _Pending)])
            for plan in part:
                self._emit(plan, stats)
        for shard_id, pos in positions.items():
            self._advance(shard_id, pos)
        self.stats.add(stats)
        return stats

    def _parts(self, plans: list[_RecordPlan]) -> list[list[_RecordPlan]]:
        """The batch's records in consecutive parts scored one after the other: one part,
        unless the forests are bounded in memory (per-key state with ``max_keys`` or
        ``memory_limit``). Then a part has at most as many keys as fit in memory at once, so
        the engine never saves (evicts) a key of the part during its call, and the part's
        results and errors are emitted (and flushed before any later key write) before the
        next part: a key's saved record never covers an event whose output is not out."""
        forests = self.forests
        limit = None
        if isinstance(forests, EngineForests) and forests.state is not None and self.value_fields:
            limit = forests.ensure(len(self.value_fields)).keys_at_once()
            if limit is not None and forests.memory_limit is not None:
                limit = max(1, limit * 9 // 10)  # room for forests growing during the call
        if limit is None:
            return [plans]
        parts: list[list[_RecordPlan]] = [[]]
        keys: set[str] = set()
        for plan in plans:
            mine = {i.key for i in plan.items if isinstance(i, _Pending)}
            if parts[-1] and len(keys | mine) > limit:
                parts.append([])
                keys = set()
            parts[-1].append(plan)
            keys |= mine
        return parts

    @staticmethod
    def _sub(rec: RawRecord, event_index: int) -> int:
        # A KCL user record is identified by its own sub-sequence number; otherwise by event index.
        return rec.sub_sequence_number if rec.sub_sequence_number is not None else event_index

    def _plan_record(
        self,
        rec: RawRecord,
        stats: StepStats,
        positions: dict[str, Position],
        pending: list[_Pending],
    ) -> _RecordPlan | None:
        """Decode one record and extract its events (phase one); None for a skipped replay."""
        seq = int(rec.sequence_number)
        sub = rec.sub_sequence_number or 0
        last = positions.get(rec.shard_id)
        if last is not None and (seq, sub) < last[:2]:
            stats.skipped += 1
            return None
        stats.records += 1
        try:
            decoded: list[Any] = self.decoder.decode(rec.data)
        except Exception as exc:  # noqa: BLE001 - containment: content never stops a shard
            decoded = [EventFailure(0, reason_of(exc))]
        plan = _RecordPlan(rec, len(decoded))
        state = getattr(self.forests, "state", None)
        if not decoded:  # e.g. a CloudWatch Logs CONTROL_MESSAGE: nothing to score
            _bump(positions, rec.shard_id, (seq, sub, 0))
            return plan
        for item in decoded:
            pos = (seq, sub, item.sub_sequence_number)
            if last is not None and pos <= last:
                stats.skipped += 1
                continue
            _bump(positions, rec.shard_id, pos)
            if isinstance(item, EventSkip):
                stats.skipped += 1
                stats.no_data += 1
                continue
            stats.events += 1
            if isinstance(item, EventFailure):
                plan.items.append((item.sub_sequence_number, item.reason, item.detail))
                continue
            try:
                entry = self._extract(rec, item)
            except Exception as exc:  # noqa: BLE001 - containment, as above
                plan.items.append((item.sub_sequence_number, reason_of(exc), None))
                continue
            if state is not None:
                kp = state.key_positions(entry.key)
                done = kp.get(rec.shard_id) if kp else None
                if done is not None and pos <= done:
                    # Already in this key's saved forest (saved after the shard's position).
                    stats.events -= 1
                    stats.skipped += 1
                    continue
                entry.pos = pos
            pending.append(entry)
            plan.items.append(entry)
        return plan

    def _extract(self, rec: RawRecord, event: Event) -> _Pending:
        """Key, values and point of one event; raises for content that cannot be scored."""
        fields = event.fields
        if self.value_fields is None:
            raise DecodeError(
                "no value fields yet: no numeric field was present in the events sampled so "
                "far; pass --values"
            )
        if self._known is not None:
            self._note_new_fields(fields)
        if self.key_field is None:
            key = DEFAULT_KEY
        elif self.key_field == PARTITION_KEY:
            key = event.partition_key if event.partition_key is not None else rec.partition_key
        else:
            raw_key = fields.get(self.key_field)
            if raw_key is None or raw_key == "":
                raise DecodeError(f"missing key field {self.key_field!r}")
            if isinstance(raw_key, (dict, list)):
                raise DecodeError(f"key field {self.key_field!r} is not a scalar")
            key = str(raw_key)[:1024]
        values = {name: to_float(name, fields.get(name)) for name in self.value_fields}
        point = np.fromiter(values.values(), dtype=np.float64, count=len(values))
        return _Pending(rec, event, key, values, point)

    def _min_score(self) -> float | _Alerts:
        if self.explain == "always":
            return -math.inf
        if self.explain == "never":
            return math.inf
        if self.grading is not None and isinstance(self.forests, EngineForests):
            return ALERTS  # per row: the rows that can be alerts (EngineForests.alert_bounds)
        return self.anomaly_threshold

    def _score_pending(self, pending: list[_Pending]) -> None:
        self._note_later = []
        try:
            self._score_rows(pending)
        finally:
            state = getattr(self.forests, "state", None)
            if state is not None:
                for p in self._note_later:
                    state.note(p.key, p.rec.shard_id, p.pos)

    def _score_rows(self, pending: list[_Pending]) -> None:
        """One call for every scorable event of the batch (phase two). A point the forests
        reject anyway (the engine checks every row before changing anything) makes the batch
        go row by row, so that it costs exactly one error entry."""
        if not pending:
            return
        min_score = self._min_score()
        forests = self.forests
        engine = isinstance(forests, EngineForests)
        if isinstance(forests, EngineForests):
            points = np.vstack([p.point for p in pending])
            # Rows the engine would reject (NaN, infinity, beyond its magnitude limit) are
            # errors of their own events; the others go in one call.
            bad = forests.rejected_rows(points)
            if bad.any():
                for i in np.flatnonzero(bad).tolist():
                    pending[i].failure = forests.rejection(points[i])
                state = forests.state
                if state is not None:
                    # Applied (to the error sink), so not again on a replay; noted once the
                    # batch is learned, since a key's record must not claim rows before them.
                    self._note_later = [p for p, b in zip(pending, bad.tolist()) if b]
                keep = ~bad
                pending = [p for p, k in zip(pending, keep.tolist()) if k]
                points = points[keep]
                if not pending:
                    return
            try:
                self._apply(pending, points, min_score)
                return
            except _STATE_ERRORS:
                raise  # a damaged stored state is no point's fault
            except (ValueError, TypeError) as exc:
                log.warning("the forests rejected a batch (%s); scoring it row by row", exc)
        for p in pending:
            try:
                self._apply([p], p.point.reshape(1, -1), min_score)
            except _STATE_ERRORS:
                if engine:
                    raise
                p.failure = f"forest rejected the point: {sys.exc_info()[1]}"[:500]
            except (ValueError, TypeError) as exc:
                # A rejected call changes no forest (contract), so this is a plain error.
                p.failure = f"forest rejected the point: {exc}"[:500]
                self._note_later.append(p)
            except Exception as exc:
                if engine:
                    raise  # the engine's store failed: an infrastructure fault
                # Python-side forests: whatever one raises is that event's error (containment).
                p.failure = reason_of(exc)

    def _apply(
        self, pending: list[_Pending], points: np.ndarray, min_score: float | _Alerts
    ) -> None:
        keyed = getattr(self.forests, "state", None) is not None
        scores, rows, high, low = self.forests.score_explain(
            [p.key for p in pending],
            points,
            min_score,
            [(p.rec.shard_id, p.pos) for p in pending] if keyed else None,
        )
        for p, s in zip(pending, scores.tolist()):
            p.score = s
        graded = getattr(self.forests, "graded", None)
        if graded is not None:
            for p, g, a in zip(pending, graded[0].tolist(), graded[1].tolist()):
                p.grade = g
                p.alert = a
        else:
            for p in pending:
                p.alert = p.score >= self.anomaly_threshold
        names = self.value_fields
        assert names is not None
        for j, i in enumerate(rows.tolist()):
            h, lo = high[j].tolist(), low[j].tolist()
            pending[i].attribution = {
                name: {"high": h[d], "low": lo[d]} for d, name in enumerate(names)
            }

    def _emit(self, plan: _RecordPlan, stats: StepStats) -> None:
        """Results and error entries of one record, in event order (phase three)."""
        rec = plan.rec
        failures: list[tuple[int, str, str | None]] = []
        failed = 0
        for item in plan.items:
            if isinstance(item, _Pending):
                if item.failure is None:
                    out = self._result(item)
                    self.results.write(out)
                    stats.scored += 1
                    if item.alert:
                        stats.anomalies += 1
                    continue
                failure: tuple[int, str, str | None] = (
                    item.event.sub_sequence_number,
                    item.failure,
                    None,
                )
            else:
                failure = item
            failed += 1
            if len(failures) <= self.limits.max_event_errors:
                failures.append(failure)
        if failed:
            stats.errors += failed
            self._write_errors(rec, failures, failed, plan.n_events)

    def _result(self, p: _Pending) -> dict[str, Any]:
        rec, event, fields = p.rec, p.event, p.event.fields
        ts: Any = event.timestamp
        if self.timestamp_field and self.timestamp_field in fields:
            ts = fields[self.timestamp_field]
        elif ts is None and rec.arrival_timestamp is not None:
            ts = rec.arrival_timestamp
        out: dict[str, Any] = {
            "key": p.key,
            "shard_id": rec.shard_id,
            "sequence_number": rec.sequence_number,
            "sub_sequence_number": self._sub(rec, event.sub_sequence_number),
            "score": p.score,
            "attribution": p.attribution,
            "is_anomaly": p.alert,
            "values": p.values,
        }
        if p.grade is not None:
            out["grade"] = p.grade
        if ts is not None:
            out["timestamp"] = ts
        if rec.sub_sequence_number is not None and event.sub_sequence_number:
            out["event_index"] = event.sub_sequence_number
        out["partition_key"] = (
            event.partition_key if event.partition_key is not None else rec.partition_key
        )
        if event.explicit_hash_key is not None:
            out["explicit_hash_key"] = event.explicit_hash_key
        if self.passthrough == PASSTHROUGH_ALL:
            out["fields"] = dict(fields)
        elif self.passthrough:
            out["fields"] = {n: fields[n] for n in self.passthrough if n in fields}
        return out

    def _write_errors(
        self,
        rec: RawRecord,
        failures: list[tuple[int, str, str | None]],
        failed: int,
        n_events: int,
    ) -> None:
        """One record-level entry with the raw bytes, then capped per-event entries."""
        base: dict[str, Any] = {"shard_id": rec.shard_id, "sequence_number": rec.sequence_number}
        if rec.partition_key:
            base["partition_key"] = rec.partition_key[:256]
        entry: dict[str, Any] = {
            "kind": "record",
            "data": base64.b64encode(rec.data).decode("ascii"),
            **base,
            "failed_events": failed,
            "events": n_events,
        }
        if failed == 1:
            index, reason, detail = failures[0]
            entry["reason"] = reason
            entry["sub_sequence_number"] = self._sub(rec, index)
            if n_events > 1 or rec.sub_sequence_number is not None:
                entry["event_index"] = index
            if detail is not None:
                entry["detail"] = excerpt(detail)
            self.errors.write(entry)
            return
        if rec.sub_sequence_number is not None:
            entry["sub_sequence_number"] = rec.sub_sequence_number
        entry["reason"] = f"{failed} of {n_events} events failed; first: {failures[0][1]}"
        budget = max(4096, 2 * len(rec.data))
        listed: list[dict[str, Any]] = []
        for index, reason, detail in failures[: self.limits.max_event_errors]:
            item = {
                "kind": "event",
                "reason": reason,
                **base,
                "sub_sequence_number": self._sub(rec, index),
                "event_index": index,
            }
            if detail is not None:
                item["excerpt"] = excerpt(detail)
            budget -= 120 + len(reason) + len(item.get("excerpt", "")) + len(rec.shard_id)
            if budget < 0:
                break
            listed.append(item)
        entry["unlisted_errors"] = failed - len(listed)
        self.errors.write(entry)
        for item in listed:
            self.errors.write(item)

    def _advance(self, shard_id: str, pos: tuple[int, int, int]) -> None:
        last = self.forests.positions.get(shard_id)
        if last is None or pos > last:
            self.forests.positions[shard_id] = pos

    def _note_new_fields(self, fields: dict[str, Any]) -> None:
        assert self._known is not None
        new = fields.keys() - self._known
        if not new:
            return
        for name in sorted(new):
            if self._new_logged >= MAX_LOGGED_NEW_FIELDS:
                log.info("more fields first seen after discovery; no longer logging them")
                self._known = None  # stop looking
                return
            log.info("field %r first seen after schema discovery (not scored)", name[:200])
            self._known.add(name)
            self._new_logged += 1
