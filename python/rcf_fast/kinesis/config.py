"""``ScorerConfig``: the settings shared by the CLI, the Lambda helper and the KCL processor,
and ``build_step`` that turns them into a ``ScoringStep``. ``from_env`` reads ``RCF_*``
environment variables (Lambda, KCL subprocesses)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rcf_fast.kinesis.decoders import FORMATS, make_decoder
from rcf_fast.kinesis.decoders.vpc_flow import DEFAULT_FIELDS as VPC_FIELDS
from rcf_fast.kinesis.decoders.vpc_flow import parse_format
from rcf_fast.kinesis.errors import ConfigError
from rcf_fast.kinesis.forests import check_params
from rcf_fast.kinesis.limits import Limits
from rcf_fast.kinesis.schema import Schema, parse_fields
from rcf_fast.kinesis.sinks import Sink
from rcf_fast.kinesis.step import ScoringStep

# VPC flow lines have many integer fields (ports, times); score traffic volume unless told.
VPC_DEFAULT_VALUES = ["packets", "bytes"]


@dataclass
class ScorerConfig:
    """What to decode and how to score.

    ``fields`` is a ``--fields`` spec (``name[:type],...``). For JSON/CSV it is the schema (CSV
    column order); for VPC flow a custom field list is given by ``vpc_format``. ``values``
    names the fields fed to the forest (default: numeric schema fields, or packets/bytes for VPC).
    """

    format: str = "json"
    message_format: str = "json"
    fields: str | None = None
    values: list[str] | None = None
    key: str | None = None
    vpc_format: str | None = None
    timestamp_field: str | None = None
    forest: dict[str, Any] = field(default_factory=dict)
    anomaly_threshold: float = 2.0
    # Per-key alert grading (``rcf_fast.Thresholder`` parameters; {} = its defaults); None:
    # anomalies are scores >= ``anomaly_threshold``.
    grading: dict[str, Any] | None = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    passthrough: list[str] | None = None  # field names, or ["all"]
    row_delimiter: str = "\n"

    def validate(self) -> ScorerConfig:
        """Check everything that can be checked before the first record: a bad option is a
        ``ConfigError`` at start, never an error on every record."""
        if self.format not in FORMATS:
            raise ConfigError(f"format {self.format!r}: expected one of {', '.join(FORMATS)}")
        check_params(self.forest)
        if not isinstance(self.limits, Limits):
            raise ConfigError(f"limits: expected a Limits, got {type(self.limits).__name__}")
        if not self.row_delimiter:
            raise ConfigError("--row-delimiter: expected at least one character")
        if self.grading is not None:
            import rcf_fast

            try:
                rcf_fast.Thresholder(**self.grading)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"alert grading {self.grading}: {exc}") from None
        values = self.value_fields()
        if self.values is not None and not [v for v in self.values if v.strip()]:
            raise ConfigError("--values: expected at least one field name")
        if self.key and values and self.key in values:
            raise ConfigError(f"--key {self.key!r} is also a value field (--values)")
        if self.line_format == "vpc-flow":
            names = parse_format(self.vpc_format) if self.vpc_format else list(VPC_FIELDS)
            option = "--vpc-format" if self.vpc_format else "the default VPC flow format (v2)"
            missing = [v for v in values or [] if v not in names]
            if missing:
                raise ConfigError(
                    f"{option} has no field {', '.join(map(repr, missing))} to score; add "
                    f"it to --vpc-format or choose --values among {', '.join(names)}"
                )
            if self.key and self.key not in names and not self.key.startswith("@"):
                raise ConfigError(f"--key {self.key!r} is not a field of {option}")
        schema = self.schema()
        if schema is not None and values:
            missing = [v for v in values if v not in schema.names]
            if missing and self.line_format == "csv":
                raise ConfigError(
                    f"--values {', '.join(missing)}: not CSV columns of --fields "
                    f"({', '.join(schema.names)})"
                )
        return self

    @property
    def line_format(self) -> str:
        return self.message_format if self.format in ("cwl", "kpl") else self.format

    def schema(self) -> Schema | None:
        return parse_fields(self.fields) if self.fields else None

    def value_fields(self) -> list[str] | None:
        if self.values:
            return list(self.values)
        if self.line_format == "vpc-flow" and not self.fields:
            return list(VPC_DEFAULT_VALUES)
        return None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ScorerConfig:
        """Read RCF_FORMAT, RCF_MESSAGE_FORMAT, RCF_FIELDS, RCF_VALUES, RCF_KEY, RCF_VPC_FORMAT,
        RCF_TIMESTAMP_FIELD, RCF_FOREST (JSON object of forest parameters),
        RCF_ANOMALY_THRESHOLD, RCF_PASSTHROUGH (names or ``all``), RCF_ROW_DELIMITER and one
        ``RCF_MAX_...`` variable per limit (RCF_MAX_JSON_DEPTH, RCF_MAX_EVENTS, ...)."""
        env = os.environ if env is None else env
        try:
            forest = json.loads(env.get("RCF_FOREST", "{}"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"RCF_FOREST is not a JSON object: {exc}") from None
        values = env.get("RCF_VALUES")
        passthrough = env.get("RCF_PASSTHROUGH")
        limits = {}
        for name in Limits.names():
            raw = env.get("RCF_" + name.upper())
            if raw:
                try:
                    limits[name] = int(raw)
                except ValueError:
                    raise ConfigError(f"RCF_{name.upper()}={raw!r}: expected an integer") from None
        return cls(
            format=env.get("RCF_FORMAT", "json"),
            message_format=env.get("RCF_MESSAGE_FORMAT", "json"),
            fields=env.get("RCF_FIELDS") or None,
            values=values.split(",") if values else None,
            key=env.get("RCF_KEY") or None,
            timestamp_field=env.get("RCF_TIMESTAMP_FIELD") or None,
            vpc_format=env.get("RCF_VPC_FORMAT") or None,
            forest=forest,
            anomaly_threshold=float(env.get("RCF_ANOMALY_THRESHOLD") or "2.0"),
            # A fixed score threshold replaces the per-key grading.
            grading=None if env.get("RCF_ANOMALY_THRESHOLD") else {},
            limits=Limits().replace(**limits),
            passthrough=passthrough.split(",") if passthrough else None,
            row_delimiter=_unescape(env.get("RCF_ROW_DELIMITER", "\\n")),
        ).validate()


def _unescape(text: str) -> str:
    """``\\n``, ``\\r\\n``, ``\\t`` written on a command line or in an environment variable."""
    return text.replace("\\r", "\r").replace("\\n", "\n").replace("\\t", "\t")


def build_step(
    cfg: ScorerConfig, results: Sink | None = None, errors: Sink | None = None, **step_kwargs: Any
) -> ScoringStep:
    """The scoring step for a configuration."""
    cfg.validate()
    schema = cfg.schema()
    columns = schema.names if schema and cfg.line_format == "csv" else None
    vpc_fields = parse_format(cfg.vpc_format) if cfg.vpc_format else None
    decoder = make_decoder(
        cfg.format,
        cfg.message_format,
        columns=columns,
        vpc_fields=vpc_fields,
        limits=cfg.limits,
        row_delimiter=cfg.row_delimiter,
    )
    return ScoringStep(
        decoder,
        cfg.forest,
        key_field=cfg.key,
        value_fields=cfg.value_fields(),
        schema=schema,
        results=results,
        errors=errors,
        anomaly_threshold=cfg.anomaly_threshold,
        grading=cfg.grading if cfg.grading is not None else False,
        timestamp_field=cfg.timestamp_field,
        limits=cfg.limits,
        passthrough=cfg.passthrough,
        **step_kwargs,
    )
