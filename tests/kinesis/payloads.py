"""Builders for record payloads in every supported format (shared by tests and the demo's style)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence

from aws_kinesis_agg.aggregator import RecordAggregator


def cwl_payload(
    messages: Sequence[str],
    log_group: str = "/app/metrics",
    control: bool = False,
    start_ms: int = 1_700_000_000_000,
) -> bytes:
    """A CloudWatch Logs subscription record (gzip JSON)."""
    if control:
        body = {
            "messageType": "CONTROL_MESSAGE",
            "owner": "CloudwatchLogs",
            "logGroup": "",
            "logStream": "",
            "subscriptionFilters": [],
            "logEvents": [
                {
                    "id": "",
                    "timestamp": start_ms,
                    "message": "CWL CONTROL MESSAGE: Checking health of destination",
                }
            ],
        }
    else:
        body = {
            "messageType": "DATA_MESSAGE",
            "owner": "123456789012",
            "logGroup": log_group,
            "logStream": "stream-1",
            "subscriptionFilters": ["rcf"],
            "logEvents": [
                {"id": str(i), "timestamp": start_ms + i * 1000, "message": m}
                for i, m in enumerate(messages)
            ],
        }
    return gzip.compress(json.dumps(body).encode())


def kpl_payload(partition_key: str, messages: Sequence[bytes]) -> bytes:
    """A KPL aggregated record of ``messages``."""
    agg = RecordAggregator()
    for m in messages:
        agg.add_user_record(partition_key, m)
    return agg.clear_and_get().get_contents()[2]


def vpc_line(
    iface: str, packets: int, nbytes: int, action: str = "ACCEPT", start: int = 1_700_000_000
) -> str:
    """A version 2 default-format VPC flow log line."""
    return (
        f"2 123456789012 {iface} 10.0.0.5 10.0.1.9 44321 443 6 {packets} {nbytes} "
        f"{start} {start + 60} {action} OK"
    )


def json_lines(rows: list[dict]) -> list[bytes]:
    return [json.dumps(r).encode() for r in rows]
