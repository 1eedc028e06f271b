"""Hypothesis: no input makes a decoder or the scoring step raise anything but ``DecodeError``
inside the step, so a malformed record can never stop the consumer; counts always add up."""

from __future__ import annotations

import gzip
import hashlib
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from rcf_fast.kinesis import (
    DecodeError,
    Event,
    EventFailure,
    KeyedForests,
    RawRecord,
    ScoringStep,
    make_decoder,
)
from rcf_fast.kinesis.limits import Limits
from rcf_fast.kinesis.records import EventSkip

from .fakes import RecordingForest, failed_event_count, mem
from .hostile import KPL_MAGIC, kpl_aggregate
from .payloads import cwl_payload, kpl_payload

FORMATS = [
    ("json", "json"),
    ("csv", "json"),
    ("vpc-flow", "json"),
    ("cwl", "json"),
    ("cwl", "vpc-flow"),
    ("kpl", "json"),
    ("kpl", "csv"),
]

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)
numbers = st.floats(allow_nan=False, allow_infinity=False, width=32) | st.integers(-(10**6), 10**6)
messages = st.one_of(
    st.text(max_size=40),
    json_values.map(json.dumps),
    st.builds(lambda v: json.dumps({"k": "a", "v": v}), json_values),
    # Well-formed records too, so that the scoring path is exercised, not only the error path.
    st.builds(lambda k, v: json.dumps({"k": k, "v": v}), st.sampled_from(["a", "b"]), numbers),
    st.builds(lambda v: f"2 1 eni-1 a b 1 2 6 {v} {v} 0 60 ACCEPT OK", st.integers(0, 10**9)),
)


def _kpl_body(body: bytes) -> bytes:
    """Random protobuf-ish bytes behind the KPL magic with a valid digest: the reader's job."""
    return KPL_MAGIC + body + hashlib.md5(body).digest()


hostile = st.one_of(
    st.integers(1, 3000).map(lambda d: b"[" * d + b"]" * d),
    st.integers(1, 3000).map(lambda d: b'{"a":' * d + b"1" + b"}" * d),
    st.integers(90, 6000).map(lambda n: b'{"k": "a", "v": ' + b"9" * n + b"}"),
    st.binary(max_size=120).map(_kpl_body),
    st.lists(st.integers(0, 255), max_size=60).map(lambda v: _kpl_body(bytes(v))),
    st.binary(max_size=200).map(lambda b: b"\x1f\x8b" + b),
    st.lists(messages, min_size=1, max_size=12).map(
        lambda m: kpl_aggregate([("p", x.encode()) for x in m])
    ),
)
payloads = st.one_of(
    hostile,
    st.binary(max_size=200),
    messages.map(str.encode),
    st.lists(messages, max_size=4).map(cwl_payload),
    st.lists(messages.map(str.encode), min_size=1, max_size=4).map(lambda m: kpl_payload("pk", m)),
    st.binary(max_size=100).map(gzip.compress),
    json_values.map(lambda v: gzip.compress(json.dumps(v).encode())),
)


SMALL = Limits(max_events=5, max_json_depth=6, max_number_digits=20, max_fields=8)


@given(data=payloads)
def test_decoders_only_raise_decode_error(data: bytes) -> None:
    """Random bytes through every decoder yield only events (or per-event failures and skips),
    or one ``DecodeError``, under the default limits and under small ones."""
    for fmt, inner in FORMATS:
        for limits in (Limits(), SMALL):
            try:
                out = make_decoder(fmt, inner, limits=limits).decode(data)
            except DecodeError as exc:
                assert exc.reason
                continue
            assert [e.sub_sequence_number for e in out] == list(range(len(out)))
            assert all(isinstance(e, (Event, EventFailure, EventSkip)) for e in out)


@given(batch=st.lists(payloads, max_size=8))
def test_step_accounts_for_every_event_whatever_the_input(batch: list[bytes]) -> None:
    for fmt, inner in FORMATS:
        forests = KeyedForests(
            {"seed": 1}, factory=RecordingForest, loader=RecordingForest.from_bytes
        )
        step = ScoringStep(
            make_decoder(fmt, inner, limits=SMALL),
            {},
            key_field="k",
            value_fields=["v"],
            forests=forests,
        )
        records = [RawRecord("shardId-0", str(10 + i), d) for i, d in enumerate(batch)]
        stats = step.process(records)
        step.flush()
        results: list[Any] = mem(step.results).items
        errors: list[Any] = mem(step.errors).items
        assert stats.records == len(batch)
        assert len(results) == stats.scored and failed_event_count(errors) == stats.errors
        # The error output stays proportional: each record's bytes at most once.
        data = [e["data"] for e in errors if "data" in e]
        assert len(data) <= len(batch)
        assert stats.scored + stats.errors == stats.events
        learned = sum(len(f.points) for _, f in forests)
        assert learned == stats.scored
