"""The polling consumer: leases shards, reads them in lineage order, scores, persists, checkpoints.

Order of durability, per persist: flush the sinks -> save the state (forests + positions) ->
checkpoint every shard covered by that state. With a per-key state store
(``keystate.KeyedStateStore``, what ``rcf-fast consume --state`` opens) saving writes only the
keys changed since their last save, then the shard positions (see ``keystate`` for why a crash
between those writes neither learns a record twice nor loses one, and how keys follow a
reshard); a whole-blob ``StateStore`` is saved whole. Each step is retried with exponential backoff
on transient faults (throttling, 5xx, connection errors: ``is_transient``) up to
``max_retries`` times; a sink's buffer survives a failed flush. If the state store reports
that another process wrote the state (``ConflictError``), the consumer stops at once: it
releases its leases without checkpointing and raises. A crash between any two steps replays records
from the checkpoint; those already in the saved state are skipped by the scoring step, those
not in it are learned once from the saved state, so no record is learned twice and none lost.

Lineage: a shard starts only when each of its parents is finished (read to its end and
checkpointed as such) or no longer listed (trimmed), so after a split or merge each key's
records are applied in order.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from rcf_fast.kinesis.errors import (
    ConfigError,
    ConflictError,
    ExpiredIteratorError,
    ThrottledError,
    TransientError,
    is_transient,
)
from rcf_fast.kinesis.keystate import KeyedStateStore
from rcf_fast.kinesis.source import ShardInfo, ShardSource
from rcf_fast.kinesis.step import ScoringStep
from rcf_fast.kinesis.stores.checkpoint import CheckpointStore
from rcf_fast.kinesis.stores.file_state import StateStore

log = logging.getLogger("rcf_fast.kinesis")
INITIAL_POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")
MAX_SHARDS_REMOVED = (
    "max_shards (--max-shards) was removed: rcf-fast consume is a single-process consumer; a "
    "stream split over processes by it lost a dead process's shards or restarted their forests. "
    "Run one consume per stream, or scale out with KCL workers (python -m rcf_fast.kinesis.kcl) "
    "or Flink (rcf_fast.flink.RandomCutForestFunction): see docs/scale_out.md"
)


@dataclass
class _Shard:
    """What the consumer tracks for a shard it owns."""

    info: ShardInfo
    iterator: str | None = None
    last_sequence: str | None = None  # last record read (in memory)
    checkpointed: str | None = None  # last sequence number written to the checkpoint store
    ended: bool = False
    backoff: float = 0.0
    not_before: float = 0.0
    lag_ms: int = 0


@dataclass
class ConsumerStatus:
    """Progress counters for status lines and tests."""

    records: int = 0
    scored: int = 0
    errors: int = 0
    anomalies: int = 0
    skipped: int = 0
    throttled: int = 0
    transient_faults: int = 0
    expired_iterators: int = 0
    persists: int = 0
    lag_ms: int = 0
    shards_owned: int = 0
    shards_finished: int = 0
    started: float = field(default_factory=time.monotonic)


class Consumer:
    """Reads a stream through a ``ShardSource`` and feeds a ``ScoringStep``.

    Parameters
    ----------
    source, step, checkpoints, state_store
        The stream, the scoring step, the checkpoint store and the state store.
    owner : str, optional
        Lease owner id; default ``<hostname>:<pid>``.
    initial_position : str
        Where a shard without a checkpoint starts: TRIM_HORIZON, LATEST or AT_TIMESTAMP
        (with ``timestamp``).
    persist_interval : float
        Seconds between persists (flush, state, checkpoints); 0 persists after every batch.
    max_shards : None
        Removed: a value raises ``ConfigError``. The consumer is single-process (it takes every
        shard it can lease); spread a stream over processes with the KCL adapter or Flink
        (docs/scale_out.md). The leases only keep a second process off the shards one holds.
    """

    def __init__(
        self,
        source: ShardSource,
        step: ScoringStep,
        checkpoints: CheckpointStore,
        state_store: StateStore | KeyedStateStore,
        *,
        owner: str | None = None,
        initial_position: str = "TRIM_HORIZON",
        timestamp: datetime | None = None,
        batch_limit: int = 1000,
        persist_interval: float = 30.0,
        lease_seconds: float = 30.0,
        idle_sleep: float = 0.25,
        max_backoff: float = 5.0,
        base_backoff: float = 0.1,
        shard_refresh_interval: float = 10.0,
        max_shards: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
        on_status: Callable[[ConsumerStatus], None] | None = None,
        max_retries: int = 8,
        max_retry_backoff: float = 30.0,
    ) -> None:
        if max_shards is not None:
            raise ConfigError(MAX_SHARDS_REMOVED)
        if initial_position not in INITIAL_POSITIONS:
            raise ConfigError(
                f"initial position {initial_position!r}: expected one of {INITIAL_POSITIONS}"
            )
        if initial_position == "AT_TIMESTAMP" and timestamp is None:
            raise ConfigError("initial position AT_TIMESTAMP needs a timestamp")
        if not 1 <= batch_limit <= 10000:
            raise ConfigError(
                f"batch_limit {batch_limit}: expected 1..10000 (the GetRecords limit)"
            )
        self.source = source
        self.step = step
        self.checkpoints = checkpoints
        self.state_store = state_store
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.initial_position = initial_position
        self.timestamp = timestamp
        self.batch_limit = batch_limit
        self.persist_interval = persist_interval
        self.lease_seconds = lease_seconds
        self.idle_sleep = idle_sleep
        self.max_backoff = max_backoff
        self.base_backoff = base_backoff
        self.shard_refresh_interval = shard_refresh_interval
        self.sleep = sleep
        self.clock = clock
        self.rng = random.Random(seed)
        self.on_status = on_status
        self.max_retries = max_retries
        self.max_retry_backoff = max_retry_backoff
        self.status = ConsumerStatus()
        self.owned: dict[str, _Shard] = {}
        self.finished: set[str] = set()
        self.skipped: set[str] = set()  # closed shards never read, passed over (LATEST start)
        self.known: dict[str, ShardInfo] = {}
        self._stop = False
        self._loaded = False
        self._dirty = False

    # -- lifecycle ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask ``run`` to persist and return after the current batch."""
        self._stop = True

    def load(self) -> None:
        """Load the persisted state into the step (done once, by ``run``)."""
        if isinstance(self.state_store, KeyedStateStore):
            self.step.attach_state(self.state_store)
        else:
            data = self.state_store.load()
            if data:
                self.step.load_state(data)
        self._loaded = True

    def run(
        self, stop_after_idle: float | None = None, max_rounds: int | None = None
    ) -> ConsumerStatus:
        """Consume until ``stop()``, ``stop_after_idle`` idle seconds, or ``max_rounds`` polls."""
        if not self._loaded:
            self.load()
        last_data = self.clock()
        last_persist = self.clock()
        last_refresh = -float("inf")
        last_renew = self.clock()
        rounds = 0
        try:
            while not self._stop:
                now = self.clock()
                since = now - last_refresh
                # Look again at once after a shard ended (its children may start), but call
                # ListShards at most once a second when waiting for shards to become free.
                if since >= self.shard_refresh_interval or (self._needs_refresh() and since >= 1.0):
                    try:
                        self._refresh_shards()
                    except ThrottledError:
                        self.status.throttled += 1
                    except Exception as exc:
                        if not is_transient(exc):
                            raise
                        self.status.transient_faults += 1
                        log.warning("listing shards failed, retrying later: %s", exc)
                    last_refresh = now
                got = self._poll_round()
                rounds += 1
                if got:
                    last_data = self.clock()
                if self._dirty and (self.clock() - last_persist >= self.persist_interval):
                    self.persist()
                    last_persist = self.clock()
                if self.clock() - last_renew >= self.lease_seconds / 3:
                    for shard in list(self.owned.values()):
                        self._renew(shard)
                    last_renew = self.clock()
                if self.on_status:
                    self.on_status(self.status)
                if max_rounds is not None and rounds >= max_rounds:
                    break
                if stop_after_idle is not None and self.clock() - last_data >= stop_after_idle:
                    break
                if not got:
                    self.sleep(self.idle_sleep)
            self.persist()
        except KeyboardInterrupt:
            self.persist()
            self.release()
            raise
        except ConflictError:
            # Another process wrote the state: stop, keep its state, checkpoint nothing.
            log.error("the state was written by another process; stopping without saving")
            self.release()
            raise
        self.release()
        return self.status

    def release(self) -> None:
        """Give up every lease (after a final persist); a lease that cannot be released
        expires by itself."""
        for shard_id in list(self.owned):
            try:
                self.checkpoints.release(shard_id, self.owner)
            except Exception as exc:  # noqa: BLE001 - best effort at exit
                log.warning("shard %s: releasing the lease failed: %s", shard_id, exc)
        self.owned.clear()

    def _retry(self, what: str, fn: Callable[[], object]) -> None:
        """Call ``fn``, retrying transient faults with exponential backoff and full jitter."""
        for attempt in range(self.max_retries + 1):
            try:
                fn()
                return
            except Exception as exc:
                if not is_transient(exc) or attempt == self.max_retries:
                    raise
                self.status.transient_faults += 1
                delay = min(self.max_retry_backoff, self.base_backoff * 2 ** (attempt + 2))
                delay *= 0.5 + self.rng.random() / 2
                log.warning("%s failed (%s); retry %d in %.1fs", what, exc, attempt + 1, delay)
                self.sleep(delay)

    # -- shards ---------------------------------------------------------------------------------

    def _needs_refresh(self) -> bool:
        # After a shard ended its children may be startable; look again at once.
        return any(s.ended for s in self.owned.values()) or not self.owned

    def _refresh_shards(self) -> None:
        shards = self.source.list_shards()
        self.known = {s.shard_id: s for s in shards}
        for shard_id in [sid for sid, s in self.owned.items() if s.ended]:
            del self.owned[shard_id]
        for info in sorted(shards, key=lambda s: s.shard_id):
            if info.shard_id in self.owned or info.shard_id in self.finished:
                continue
            cp = self.checkpoints.get(info.shard_id)
            if cp is not None and cp.finished:
                self.finished.add(info.shard_id)
                continue
            if cp is None and info.is_closed and self.initial_position == "LATEST":
                # Never read and closed: from LATEST there is nothing left in it to read.
                self.skipped.add(info.shard_id)
                continue
            if not all(self._parent_done(p) for p in info.parents):
                continue
            if not self.checkpoints.acquire(info.shard_id, self.owner, self.lease_seconds):
                continue
            cp = self.checkpoints.get(info.shard_id)
            shard = _Shard(info, checkpointed=cp.sequence_number if cp else None)
            shard.last_sequence = shard.checkpointed
            self.owned[info.shard_id] = shard
        self.status.shards_owned = len(self.owned)
        self.status.shards_finished = len(self.finished)

    def _parent_done(self, parent_id: str) -> bool:
        if parent_id in self.finished or parent_id in self.skipped:
            return True
        if parent_id not in self.known:
            return True  # trimmed past retention: nothing left to read
        cp = self.checkpoints.get(parent_id)
        if cp is not None and cp.finished:
            self.finished.add(parent_id)
            return True
        return False

    def _iterator(self, shard: _Shard) -> str:
        sid = shard.info.shard_id
        if shard.last_sequence is not None:
            return self.source.get_iterator(sid, "AFTER_SEQUENCE_NUMBER", shard.last_sequence)
        if any(p in self.finished for p in shard.info.parents):
            # The child of a shard we read to its end starts at its beginning, whatever the
            # initial position: its records follow the parent's.
            return self.source.get_iterator(sid, "TRIM_HORIZON")
        if self.initial_position == "AT_TIMESTAMP":
            return self.source.get_iterator(sid, "AT_TIMESTAMP", timestamp=self.timestamp)
        return self.source.get_iterator(sid, self.initial_position)

    # -- reading --------------------------------------------------------------------------------

    def _poll_round(self) -> int:
        got = 0
        for shard in list(self.owned.values()):
            if shard.ended or self.clock() < shard.not_before:
                continue
            got += self._poll_shard(shard)
        self.status.lag_ms = max((s.lag_ms for s in self.owned.values()), default=0)
        return got

    def _poll_shard(self, shard: _Shard) -> int:
        try:
            if shard.iterator is None:
                shard.iterator = self._iterator(shard)
            batch = self.source.get_records(shard.info.shard_id, shard.iterator, self.batch_limit)
        except TransientError as exc:
            if isinstance(exc, ThrottledError):
                self.status.throttled += 1
            else:
                self.status.transient_faults += 1
            shard.backoff = min(self.max_backoff, max(self.base_backoff, shard.backoff * 2))
            # Full jitter keeps many consumers of one stream from retrying in lockstep.
            shard.not_before = self.clock() + shard.backoff * (0.5 + self.rng.random() / 2)
            return 0
        except ExpiredIteratorError:
            self.status.expired_iterators += 1
            shard.iterator = None  # next poll restarts after the last record read
            return 0
        shard.backoff = 0.0
        shard.lag_ms = batch.millis_behind_latest
        if batch.records:
            stats = self.step.process(batch.records)
            shard.last_sequence = batch.records[-1].sequence_number
            self._dirty = True
            self.status.records += len(batch.records)
            self.status.scored += stats.scored
            self.status.errors += stats.errors
            self.status.anomalies += stats.anomalies
            self.status.skipped += stats.skipped
        shard.iterator = batch.next_iterator
        if batch.next_iterator is None:
            # Closed shard read to its end: persist now so the children can start.
            shard.ended = True
            self._dirty = True
            self.persist()
        return len(batch.records)

    # -- durability -----------------------------------------------------------------------------

    def persist(self) -> None:
        """Flush sinks, save the state, then checkpoint the shards that state covers."""
        self._retry("flushing the sinks", self.step.flush)
        if isinstance(self.state_store, KeyedStateStore):
            # Incremental: a failed save leaves the unsaved keys changed, so a retry writes them.
            self._retry("saving the state", self.step.save_state)
        else:
            blob, store = self.step.state_bytes(), self.state_store
            self._retry("saving the state", lambda: store.save(blob))
        self.status.persists += 1
        self._dirty = False
        for sid, shard in list(self.owned.items()):
            if shard.last_sequence == shard.checkpointed and not shard.ended:
                self._renew(shard)
                continue
            try:
                self._retry(
                    f"checkpointing shard {sid}",
                    lambda sid=sid, shard=shard: self.checkpoints.checkpoint(  # type: ignore[misc]
                        sid,
                        self.owner,
                        shard.last_sequence,
                        finished=shard.ended,
                        lease_seconds=self.lease_seconds,
                    ),
                )
            except ConflictError as exc:
                log.warning("%s; dropping the shard", exc)
                del self.owned[sid]
                continue
            shard.checkpointed = shard.last_sequence
            if shard.ended:
                self.finished.add(sid)
                self.status.shards_finished = len(self.finished)

    def _renew(self, shard: _Shard) -> None:
        try:
            held = self.checkpoints.acquire(shard.info.shard_id, self.owner, self.lease_seconds)
        except Exception as exc:
            if not is_transient(exc):
                raise
            # The lease outlives a few failed renewals (renewed every lease_seconds / 3).
            self.status.transient_faults += 1
            log.warning("shard %s: renewing the lease failed: %s", shard.info.shard_id, exc)
            return
        if not held:
            log.warning("shard %s: lease taken by another owner; dropping it", shard.info.shard_id)
            del self.owned[shard.info.shard_id]
