"""VPC flow log lines: space-separated, version 2 default format or a custom field list.

Fields are read by name, for every version AWS documents (2 to 8): the version 2 default
fields; 3: vpc-id, subnet-id, instance-id, tcp-flags, type, pkt-srcaddr, pkt-dstaddr;
4: region, az-id, sublocation-type, sublocation-id; 5: pkt-src-aws-service,
pkt-dst-aws-service, flow-direction, traffic-path; 7: the ECS fields; 8: reject-reason.
A custom format names its fields (``--vpc-format '${version} ${interface-id} ...'``); an
unknown name is accepted (a newer AWS field) with a warning, read as text.

``-`` (no value) becomes None. A line whose ``log-status`` is NODATA (no traffic in the
window) or SKIPDATA (records skipped) carries nothing to score: it is counted as skipped,
neither scored nor an error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from rcf_fast.kinesis.decoders.base import SkipEvent
from rcf_fast.kinesis.errors import ConfigError, DecodeError

log = logging.getLogger("rcf_fast.kinesis")

DEFAULT_FIELDS = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
]
FIELDS_BY_VERSION = {
    2: DEFAULT_FIELDS,
    3: ["vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr"],
    4: ["region", "az-id", "sublocation-type", "sublocation-id"],
    5: ["pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path"],
    7: [
        "ecs-cluster-arn",
        "ecs-cluster-name",
        "ecs-container-instance-arn",
        "ecs-container-instance-id",
        "ecs-container-id",
        "ecs-second-container-id",
        "ecs-service-name",
        "ecs-task-definition-arn",
        "ecs-task-arn",
        "ecs-task-id",
    ],
    8: ["reject-reason"],
}
KNOWN_FIELDS = {name for names in FIELDS_BY_VERSION.values() for name in names}
# Integer fields (the rest are text). Ports, protocol, flags and times are integers but make
# poor anomaly dimensions; the default value fields are packets and bytes.
NUMERIC_FIELDS = frozenset(
    {
        "version",
        "srcport",
        "dstport",
        "protocol",
        "packets",
        "bytes",
        "start",
        "end",
        "tcp-flags",
        "traffic-path",
    }
)
NO_DATA = ("NODATA", "SKIPDATA")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_MAX_DIGITS = 20  # 64-bit counters


def parse_format(spec: str) -> list[str]:
    """Field list from an AWS log format string (``${version} ${srcaddr} ...``) or plain names;
    ``ConfigError`` for an empty, malformed or repeated name."""
    names = [tok.strip().removeprefix("${").removesuffix("}") for tok in spec.split()]
    if not names:
        raise ConfigError(f"--vpc-format {spec!r}: expected field names like '${{version}}'")
    seen: set[str] = set()
    for name in names:
        if not _NAME.match(name):
            raise ConfigError(f"--vpc-format: invalid field name {name!r} in {spec[:200]!r}")
        if name in seen:
            raise ConfigError(f"--vpc-format: field {name!r} is listed twice")
        seen.add(name)
    unknown = [n for n in names if n not in KNOWN_FIELDS]
    if unknown:
        log.warning(
            "--vpc-format: fields %s are not VPC flow log v2-v8 fields; read as text", unknown
        )
    return names


class VpcFlowDecoder:
    """Decodes one flow log line into typed fields."""

    name = "vpc-flow"

    def __init__(self, fields: Sequence[str] | None = None) -> None:
        self.fields = list(fields) if fields else list(DEFAULT_FIELDS)
        self._status = self.fields.index("log-status") if "log-status" in self.fields else None

    def decode_line(self, text: str) -> dict:
        parts = text.split()
        if len(parts) != len(self.fields):
            raise DecodeError(
                f"VPC flow log line has {len(parts)} fields, expected {len(self.fields)} "
                f"({' '.join(self.fields[:4])} ...)"
            )
        if self._status is not None and parts[self._status] in NO_DATA:
            raise SkipEvent(f"VPC flow log {parts[self._status]} line")
        out: dict = {}
        for name, value in zip(self.fields, parts):
            if value == "-":
                out[name] = None
            elif name in NUMERIC_FIELDS:
                if len(value) > _MAX_DIGITS or not value.isdigit():
                    raise DecodeError(
                        f"VPC flow field {name!r}: expected an integer, got {value[:40]!r}"
                    )
                out[name] = int(value)
            else:
                out[name] = value
        version = out.get("version")
        if version is not None and version < 2:
            raise DecodeError(f"VPC flow field 'version': unsupported version {version}")
        return out
