"""Decoders and schema discovery: every format, the malformed cases, and their reasons."""

from __future__ import annotations

import gzip
import json

import pytest
from rcf_fast.kinesis import (
    DecodeError,
    Event,
    EventFailure,
    SchemaError,
    discover_schema,
    make_decoder,
    parse_fields,
)
from rcf_fast.kinesis.decoders import CsvDecoder, VpcFlowDecoder
from rcf_fast.kinesis.decoders.base import SkipEvent
from rcf_fast.kinesis.decoders.vpc_flow import parse_format
from rcf_fast.kinesis.records import EventSkip

from .fakes import event_of, failure_of
from .payloads import cwl_payload, kpl_payload, vpc_line


def test_json_record_flattens_nested_objects() -> None:
    (item,) = make_decoder("json").decode(b'{"host": "a", "m": {"cpu": 0.5, "mem": 3}}\n')
    ev = event_of(item)
    assert isinstance(ev, Event) and ev.sub_sequence_number == 0
    assert ev.fields == {"host": "a", "m.cpu": 0.5, "m.mem": 3}


@pytest.mark.parametrize(
    "data, reason",
    [
        (b'{"a": 1', "invalid JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_json_malformed_raises_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        make_decoder("json").decode(data)


def test_csv_columns_count_and_header() -> None:
    dec = CsvDecoder(["ts", "value"], header=["ts", "value"])
    assert dec.decode_line("2014-07-01 00:00:00, 10844") == {
        "ts": "2014-07-01 00:00:00",
        "value": "10844",
    }
    with pytest.raises(DecodeError, match="expected 2 CSV columns"):
        dec.decode_line("1,2,3")
    with pytest.raises(SkipEvent, match="header"):
        dec.decode_line("ts,value")
    with pytest.raises(DecodeError, match="one CSV line per message, got 2"):
        dec.decode_line("1,2\n3,4")


def test_cwl_fans_out_log_events_and_keeps_bad_ones_as_failures() -> None:
    data = cwl_payload(['{"v": 1}', "not json", '{"v": 3}'])
    out = make_decoder("cwl", "json").decode(data)
    assert [type(e) for e in out] == [Event, EventFailure, Event]
    assert [e.sub_sequence_number for e in out] == [0, 1, 2]
    first, bad = event_of(out[0]), failure_of(out[1])
    assert first.fields["v"] == 1 and first.fields["logGroup"] == "/app/metrics"
    assert first.timestamp == pytest.approx(1_700_000_000.0)
    assert "log event 1: invalid JSON" in bad.reason and bad.detail == "not json"


def test_cwl_control_message_yields_nothing() -> None:
    assert make_decoder("cwl").decode(cwl_payload([], control=True)) == []


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"plain text", "not gzip"),
        (gzip.compress(b"{nope"), "not JSON"),
        (gzip.compress(json.dumps({"messageType": "OTHER"}).encode()), "messageType 'OTHER'"),
        (gzip.compress(json.dumps({"messageType": "DATA_MESSAGE"}).encode()), "no logEvents"),
    ],
)
def test_cwl_malformed_payloads(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        make_decoder("cwl").decode(data)


def test_kpl_aggregate_unpacks_user_records_with_sub_sequence_numbers() -> None:
    data = kpl_payload("pk", [b'{"v": 1}', b"{bad", b'{"v": 3}'])
    out = make_decoder("kpl", "json").decode(data)
    assert [type(e) for e in out] == [Event, EventFailure, Event]
    assert [e.sub_sequence_number for e in out] == [0, 1, 2]
    assert event_of(out[2]).fields == {"v": 3}


def test_kpl_plain_record_passes_through_and_corrupt_digest_is_an_error() -> None:
    (item,) = make_decoder("kpl", "json").decode(b'{"v": 7}')
    ev = event_of(item)
    assert ev.fields == {"v": 7}
    data = bytearray(kpl_payload("pk", [b'{"v": 1}']))
    data[-1] ^= 0xFF
    with pytest.raises(DecodeError, match="MD5 digest"):
        make_decoder("kpl").decode(bytes(data))


def test_vpc_flow_default_format() -> None:
    (item,) = make_decoder("vpc-flow").decode(vpc_line("eni-1", 10, 840).encode())
    ev = event_of(item)
    assert ev.fields["interface-id"] == "eni-1"
    assert (
        ev.fields["packets"] == 10 and ev.fields["bytes"] == 840 and ev.fields["action"] == "ACCEPT"
    )


def test_vpc_flow_nodata_and_wrong_field_count() -> None:
    nodata = "2 123456789012 eni-1 - - - - - - - 1700000000 1700000060 - NODATA"
    with pytest.raises(SkipEvent, match="NODATA"):
        VpcFlowDecoder().decode_line(nodata)
    (item,) = make_decoder("vpc-flow").decode(nodata.encode())
    assert isinstance(item, EventSkip)
    with pytest.raises(DecodeError, match="has 3 fields, expected 14"):
        VpcFlowDecoder().decode_line("2 a b")
    with pytest.raises(DecodeError, match="'bytes': expected an integer"):
        VpcFlowDecoder().decode_line(
            vpc_line("eni-1", 1, 1).replace(" 1 1700000000", " x 1700000000")
        )


def test_vpc_flow_custom_format() -> None:
    fields = parse_format("${version} ${interface-id} ${bytes} ${tcp-flags} ${pkt-srcaddr}")
    dec = make_decoder("cwl", "vpc-flow", vpc_fields=fields)
    (item,) = dec.decode(cwl_payload(["5 eni-9 1234 2 10.0.0.1"]))
    ev = event_of(item)
    assert (
        ev.fields["bytes"] == 1234
        and ev.fields["tcp-flags"] == 2
        and ev.fields["pkt-srcaddr"] == "10.0.0.1"
    )


def test_discover_schema_types_and_tolerates_a_few_bad_values() -> None:
    sample = [
        {"ts": f"2014-07-01 00:{i:02d}:00", "host": "a", "v": i * 1.5, "n": i, "ok": True}
        for i in range(20)
    ]
    sample[3]["v"] = "oops"
    schema = discover_schema(sample)
    assert schema.to_spec() == "ts:timestamp,host:str,v:float,n:int,ok:bool"
    assert schema.numeric_names(exclude=["n"]) == ["v"]


def test_discover_schema_from_csv_strings() -> None:
    rows = [CsvDecoder(["a", "b", "c"]).decode_line(f"{i},{i * 0.5},x{i}") for i in range(5)]
    assert discover_schema(rows).to_spec() == "a:int,b:float,c:str"


def test_parse_fields_and_its_errors() -> None:
    assert (
        parse_fields(["ts:timestamp,value", "host:str"]).to_spec()
        == "ts:timestamp,value:float,host:str"
    )
    with pytest.raises(SchemaError, match="unknown type 'double'"):
        parse_fields("v:double")
    with pytest.raises(SchemaError, match="listed twice"):
        parse_fields("v,v")
    with pytest.raises(SchemaError, match="empty sample"):
        discover_schema([])
