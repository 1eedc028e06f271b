"""rcf_fast on Amazon Managed Service for Apache Flink: JSON records from a Kinesis stream, one
forest per key (``RandomCutForestFunction``), scores to an output stream.

Deployed, the application reads its settings from /etc/flink/application_properties.json (the
"Runtime properties" of the application) and needs the Kinesis connector jar in the zip (see
README.md in this directory). Locally, ``python examples/flink/rcf_flink_job.py --local OUT.json [ROWS.json]``
runs the same pipeline on a collection source and writes the scored rows and the side outputs
to OUT.json; the properties come from application_properties.json next to this file (or
``RCF_FLINK_PROPERTIES``).

Input records: JSON objects such as ``{"host": "web-1", "cpu": 0.93, "ts": 1700000000000}``;
``key_field`` names the key, ``value_fields`` the values (comma-separated), ``time_field`` the
optional event time (milliseconds). Output records: JSON ``{"key", "score", "count",
"event_time", "grade", "is_anomaly"}`` (each key's scores graded by its own ``Thresholder``;
``grading`` "false" grades nothing and flags scores >= ``anomaly_threshold`` instead; the
Thresholder parameters ``z_factor``, ``score_floor``, ``horizon``, ``warmup``, ``episode_gap``,
``alert_spacing`` may be set in the "rcf" group). Alerts, with their ``values``, ``grade`` and
``attribution`` (``{"high": [...], "low": [...]}`` per value field), and rows that could not be
read go to their own streams when ``anomaly_stream_arn`` / ``bad_rows_stream_arn`` are set.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from pyflink.common import Configuration, Row, Types, WatermarkStrategy
from pyflink.datastream import DataStream, StreamExecutionEnvironment
from rcf_fast.flink import RandomCutForestFunction

MANAGED_PROPERTIES = Path("/etc/flink/application_properties.json")
LOCAL_PROPERTIES = Path(__file__).resolve().parent / "application_properties.json"
# A Row, not a tuple: the event time may be null.
ROW_TYPE = Types.ROW([Types.STRING(), Types.LIST(Types.DOUBLE()), Types.LONG()])
# Forest parameters read from the "rcf" property group, with their types.
FOREST_KEYS = {
    "shingle_size": int,
    "num_trees": int,
    "sample_size": int,
    "time_decay": float,
    "sampler": str,
    "scoring": str,
    "output_after": int,
}
# Alert grading (rcf_fast.Thresholder) parameters read from the "rcf" property group.
GRADING_KEYS = {
    "z_factor": float,
    "score_floor": float,
    "horizon": float,
    "warmup": int,
    "episode_gap": int,
    "alert_spacing": int,
}


def load_properties(path: Path) -> dict[str, dict[str, str]]:
    """Property groups as Managed Flink writes them: ``[{"PropertyGroupId", "PropertyMap"}]``."""
    groups = json.loads(path.read_text())
    return {g["PropertyGroupId"]: dict(g["PropertyMap"]) for g in groups}


def rcf_settings(props: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The "rcf" group: fields, seed, threshold and forest parameters, typed."""
    rcf = props.get("rcf", {})
    unknown = (
        set(rcf)
        - set(FOREST_KEYS)
        - set(GRADING_KEYS)
        - {
            "grading",
            "key_field",
            "value_fields",
            "time_field",
            "seed",
            "anomaly_threshold",
            "cache_size",
        }
    )
    if unknown:
        raise ValueError(f"unknown properties in group 'rcf': {sorted(unknown)}")
    if "seed" not in rcf:
        raise ValueError("property rcf.seed is required (every restore must derive the same seeds)")
    grading_on = rcf.get("grading", "true").strip().lower()
    if grading_on not in ("true", "false"):
        raise ValueError(f"property rcf.grading must be true or false, got {rcf['grading']!r}")
    grading: dict[str, Any] | bool = False
    if grading_on == "true":
        grading = {k: GRADING_KEYS[k](v) for k, v in rcf.items() if k in GRADING_KEYS}
    return {
        "key_field": rcf.get("key_field", "key"),
        "value_fields": [f.strip() for f in rcf.get("value_fields", "value").split(",")],
        "time_field": rcf.get("time_field") or None,
        "seed": int(rcf["seed"]),
        "anomaly_threshold": float(rcf.get("anomaly_threshold", "2.0")),
        "cache_size": int(rcf.get("cache_size", "128")),
        "grading": grading,
        "params": {k: FOREST_KEYS[k](v) for k, v in rcf.items() if k in FOREST_KEYS},
    }


def parse(text: str, key_field: str, value_fields: list[str], time_field: str | None) -> tuple:
    """One JSON record -> (key, values, event_time); unreadable records keep their text as the
    key's values so the forest function sends them to its bad-rows output."""
    try:
        rec = json.loads(text)
        key = str(rec[key_field])
        values = [float(rec[f]) for f in value_fields]
        ts = int(rec[time_field]) if time_field and rec.get(time_field) is not None else None
        return (key, values, ts)
    except (ValueError, KeyError, TypeError) as exc:
        return (f"unreadable: {type(exc).__name__}: {exc}"[:200], [], None)


def build(
    raw: DataStream, settings: dict[str, Any], source_parallelism: int | None = None
) -> tuple[DataStream, DataStream, DataStream]:
    """JSON text stream -> (scores, anomalies, bad rows), all as JSON text.

    The parse step runs with the source's parallelism so that it is chained to the source: a
    different parallelism would spread the records between them round-robin and reorder a
    key's records before ``key_by``.
    """
    kf, vf, tf = settings["key_field"], settings["value_fields"], settings["time_field"]
    rows = raw.map(lambda t: Row(*parse(t, kf, vf, tf)), output_type=ROW_TYPE)
    if source_parallelism is not None:
        rows = rows.set_parallelism(source_parallelism)
    fn = RandomCutForestFunction(
        len(vf),
        seed=settings["seed"],
        anomaly_threshold=settings["anomaly_threshold"],
        grading=settings["grading"],
        cache_size=settings["cache_size"],
        **settings["params"],
    )
    scored = rows.key_by(lambda r: r[0], key_type=Types.STRING()).process(
        fn, output_type=RandomCutForestFunction.output_type()
    )

    def as_json(r: Row) -> str:
        return json.dumps(r.as_dict(recursive=True))

    return (
        scored.map(as_json, output_type=Types.STRING()),
        scored.get_side_output(RandomCutForestFunction.ANOMALIES).map(
            as_json, output_type=Types.STRING()
        ),
        scored.get_side_output(RandomCutForestFunction.BAD_ROWS).map(
            as_json, output_type=Types.STRING()
        ),
    )


def kinesis_source(env: StreamExecutionEnvironment, arn: str, region: str) -> DataStream:
    """A ``KinesisStreamsSource`` (flink-connector-aws-kinesis-streams, new Source API) of UTF-8
    records; PyFlink has no wrapper for it, so it is built through the Java gateway."""
    from pyflink.common.serialization import SimpleStringSchema
    from pyflink.datastream.connectors import Source
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    cfg = Configuration()
    cfg.set_string("aws.region", region)
    j_source = (
        jvm.org.apache.flink.connector.kinesis.source.KinesisStreamsSource.builder()
        .setStreamArn(arn)
        .setSourceConfig(cfg._j_configuration)
        .setDeserializationSchema(SimpleStringSchema()._j_deserialization_schema)
        .build()
    )
    return env.from_source(
        Source(j_source), WatermarkStrategy.no_watermarks(), "kinesis", type_info=Types.STRING()
    )


def kinesis_sink(arn: str, region: str) -> Any:
    from pyflink.common.serialization import SimpleStringSchema
    from pyflink.datastream.connectors.kinesis import KinesisStreamsSink, PartitionKeyGenerator

    return (
        KinesisStreamsSink.builder()
        .set_kinesis_client_properties({"aws.region": region})
        .set_serialization_schema(SimpleStringSchema())
        .set_partition_key_generator(PartitionKeyGenerator.random())
        .set_stream_arn(arn)
        .build()
    )


def run_managed() -> None:
    props = load_properties(MANAGED_PROPERTIES)
    settings = rcf_settings(props)
    io = props["kinesis"]
    region = io["aws.region"]
    env = StreamExecutionEnvironment.get_execution_environment()
    scores, anomalies, bad = build(kinesis_source(env, io["input_stream_arn"], region), settings)
    scores.sink_to(kinesis_sink(io["output_stream_arn"], region))
    if io.get("anomaly_stream_arn"):
        anomalies.sink_to(kinesis_sink(io["anomaly_stream_arn"], region))
    if io.get("bad_rows_stream_arn"):
        bad.sink_to(kinesis_sink(io["bad_rows_stream_arn"], region))
    env.execute("rcf-fast-flink")


def run_local(out: Path, records: list[str]) -> None:
    """The same pipeline on a collection source; results and side outputs to ``out`` (JSON)."""
    path = Path(os.environ.get("RCF_FLINK_PROPERTIES", LOCAL_PROPERTIES))
    settings = rcf_settings(load_properties(path))
    cfg = Configuration()
    cfg.set_string("python.executable", sys.executable)
    cfg.set_string("python.client.executable", sys.executable)
    env = StreamExecutionEnvironment.get_execution_environment(cfg)
    env.set_parallelism(2)
    raw = env.from_collection(records, type_info=Types.STRING())  # a non-parallel source
    scores, anomalies, bad = build(raw, settings, source_parallelism=1)
    tagged = scores.map(lambda s: "score\t" + s, output_type=Types.STRING()).union(
        anomalies.map(lambda s: "anomaly\t" + s, output_type=Types.STRING()),
        bad.map(lambda s: "bad\t" + s, output_type=Types.STRING()),
    )
    result: dict[str, list[Any]] = {"score": [], "anomaly": [], "bad": []}
    for line in tagged.execute_and_collect():
        kind, text = line.split("\t", 1)
        result[kind].append(json.loads(text))
    out.write_text(json.dumps(result))


def demo_records() -> list[str]:
    """Three hosts with a daily-ish CPU pattern; web-2 spikes once; two broken records."""
    import math

    out = []
    for i in range(300):
        for h in ("web-1", "web-2", "db-1"):
            cpu = 0.5 + 0.3 * math.sin(i / 10.0 + len(h)) + 0.01 * (i % 7)
            if h == "web-2" and i == 250:
                cpu = 9.0
            out.append(json.dumps({"host": h, "cpu": cpu, "ts": 1_700_000_000_000 + 60_000 * i}))
    out.insert(100, '{"host": "web-1", "cpu": "n/a"}')
    out.insert(200, "not json")
    return out


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--local":
        recs = json.loads(Path(sys.argv[3]).read_text()) if len(sys.argv) > 3 else demo_records()
        run_local(Path(sys.argv[2]), recs)
    else:
        run_managed()
