"""Decoders for Kinesis record formats, and ``make_decoder`` to pick one by name."""

from __future__ import annotations

from collections.abc import Sequence

from rcf_fast.kinesis.decoders.base import Decoded, Decoder, LineDecoder, SingleLine
from rcf_fast.kinesis.decoders.csv_decoder import CsvDecoder, CsvRecords
from rcf_fast.kinesis.decoders.cwl import CloudWatchLogsDecoder
from rcf_fast.kinesis.decoders.json_decoder import JsonDecoder
from rcf_fast.kinesis.decoders.kpl import KplDecoder
from rcf_fast.kinesis.decoders.vpc_flow import DEFAULT_FIELDS as VPC_DEFAULT_FIELDS
from rcf_fast.kinesis.decoders.vpc_flow import VpcFlowDecoder
from rcf_fast.kinesis.errors import ConfigError
from rcf_fast.kinesis.limits import DEFAULT_LIMITS, Limits

FORMATS = ("json", "csv", "cwl", "vpc-flow", "kpl")
LINE_FORMATS = ("json", "csv", "vpc-flow")


def make_line_decoder(
    fmt: str,
    columns: Sequence[str] | None = None,
    vpc_fields: Sequence[str] | None = None,
    csv_header: Sequence[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> LineDecoder:
    """The line decoder for a message format (``json``, ``csv`` or ``vpc-flow``)."""
    if fmt == "json":
        return JsonDecoder(limits)
    if fmt == "csv":
        return CsvDecoder(columns, header=csv_header, limits=limits)
    if fmt == "vpc-flow":
        return VpcFlowDecoder(vpc_fields)
    raise ConfigError(f"message format {fmt!r}: expected one of {', '.join(LINE_FORMATS)}")


def make_decoder(
    fmt: str,
    message_format: str = "json",
    columns: Sequence[str] | None = None,
    vpc_fields: Sequence[str] | None = None,
    csv_header: Sequence[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    row_delimiter: str = "\n",
) -> Decoder:
    """The record decoder for ``--format``; ``cwl`` and ``kpl`` wrap ``message_format``; a
    ``csv`` record holds one or more rows split on ``row_delimiter``."""
    if fmt in ("cwl", "kpl"):
        inner = make_line_decoder(message_format, columns, vpc_fields, csv_header, limits)
        return CloudWatchLogsDecoder(inner, limits) if fmt == "cwl" else KplDecoder(inner, limits)
    if fmt == "csv":
        return CsvRecords(
            CsvDecoder(columns, header=csv_header, limits=limits), row_delimiter, limits
        )
    if fmt in LINE_FORMATS:
        return SingleLine(make_line_decoder(fmt, columns, vpc_fields, csv_header, limits), limits)
    raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")


__all__ = [
    "FORMATS",
    "VPC_DEFAULT_FIELDS",
    "CloudWatchLogsDecoder",
    "CsvDecoder",
    "CsvRecords",
    "Decoded",
    "Decoder",
    "JsonDecoder",
    "KplDecoder",
    "LineDecoder",
    "SingleLine",
    "VpcFlowDecoder",
    "make_decoder",
    "make_line_decoder",
]
