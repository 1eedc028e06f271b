"""Hypothesis: no input makes a decoder or the scoring step raise anything but ``DecodeError``
inside the step, so a malformed record can never stop the consumer; counts always add up."""

from __future__ import annotations

import gzip
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from rcf_fast.kinesis import DecodeError, KeyedForests, RawRecord, ScoringStep, make_decoder

from .fakes import RecordingForest, failed_event_count, mem
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
payloads = st.one_of(
    st.binary(max_size=200),
    messages.map(str.encode),
    st.lists(messages, max_size=4).map(cwl_payload),
    st.lists(messages.map(str.encode), min_size=1, max_size=4).map(lambda m: kpl_payload("pk", m)),
    st.binary(max_size=100).map(gzip.compress),
    json_values.map(lambda v: gzip.compress(json.dumps(v).encode())),
)


@given(data=payloads)
def test_decoders_only_raise_decode_error(data: bytes) -> None:
    for fmt, inner in FORMATS:
        try:
            out = make_decoder(fmt, inner).decode(data)
        except DecodeError as exc:
            assert exc.reason
            continue
        assert [e.sub_sequence_number for e in out] == list(range(len(out)))


@given(batch=st.lists(payloads, max_size=8))
def test_step_accounts_for_every_event_whatever_the_input(batch: list[bytes]) -> None:
    for fmt, inner in FORMATS:
        forests = KeyedForests(
            {"seed": 1}, factory=RecordingForest, loader=RecordingForest.from_bytes
        )
        step = ScoringStep(
            make_decoder(fmt, inner), {}, key_field="k", value_fields=["v"], forests=forests
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
