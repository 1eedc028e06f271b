"""The ``rcf-fast`` command line: ``rcf-fast consume --stream NAME ...`` scores a Kinesis stream.

State and checkpoints default to local files under ``.rcf-fast/``; ``s3://bucket/key`` or
``dynamodb://table/id`` put the state in AWS, ``dynamodb://table`` the checkpoints. ``consume`` is the
single-process consumer (its leases only keep a second process off the shards it holds); the KCL
adapter and Flink spread a stream over processes (docs/scale_out.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, TextIO

from rcf_fast import score_cmd

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rcf-fast", description="Random Cut Forest anomaly detection for streams."
    )
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command")
    score_cmd.add_parser(sub)
    c = sub.add_parser(
        "consume",
        help="score a Kinesis stream, one forest per series key",
        description="Score a Kinesis stream, one forest per series key. consume is the "
        "single-process consumer: one process reads every shard and resumes from its checkpoints "
        "when restarted. To spread a stream over processes or hosts, run KCL workers "
        "(python -m rcf_fast.kinesis.kcl) or Flink (rcf_fast.flink.RandomCutForestFunction): "
        "see docs/scale_out.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    src = c.add_argument_group("stream")
    src.add_argument("--stream", required=True, help="Kinesis stream to read")
    src.add_argument(
        "--endpoint-url", help="Kinesis-compatible endpoint (moto, LocalStack); default: AWS"
    )
    src.add_argument(
        "--region",
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    )
    src.add_argument(
        "--from",
        dest="start",
        choices=["trim-horizon", "latest", "at-timestamp"],
        default="trim-horizon",
        help="where a shard without a checkpoint starts",
    )
    src.add_argument("--timestamp", help="ISO time for --from at-timestamp")
    dec = c.add_argument_group("decoding")
    dec.add_argument("--format", default="json", choices=["json", "csv", "cwl", "vpc-flow", "kpl"])
    dec.add_argument(
        "--message-format",
        default="json",
        choices=["json", "csv", "vpc-flow"],
        help="format of each message inside cwl/kpl records",
    )
    dec.add_argument(
        "--fields",
        nargs="+",
        help="schema as name[:type] (types float,int,str,bool,timestamp); "
        "default: discovered from the first records",
    )
    dec.add_argument(
        "--values", help="comma-separated fields fed to the forest (default: numeric fields)"
    )
    dec.add_argument(
        "--key",
        help="field naming the series (@partition_key for the Kinesis partition key); "
        "default: one series",
    )
    dec.add_argument(
        "--timestamp-field",
        help="field copied to each result as its timestamp (default: the "
        "schema's first timestamp field, else the log event / arrival time)",
    )
    dec.add_argument(
        "--vpc-format",
        help="custom VPC flow log format, e.g. '${version} ${interface-id} ${bytes}' "
        "(fields of versions 2 to 8)",
    )
    dec.add_argument(
        "--row-delimiter",
        default="\\n",
        help="row delimiter of --format csv records (one record may hold several rows); "
        "escapes \\n \\r \\t",
    )
    lim = c.add_argument_group(
        "limits", "what one record may cost; going over one is one error entry naming it"
    )
    from rcf_fast.kinesis.limits import Limits

    limit_help = {
        "max_decompressed_bytes": "bytes a gzip record (cwl) may inflate to",
        "max_events": "events one record may hold (log events, KPL user records, CSV rows)",
        "max_line_bytes": "bytes of one event's text (record, log message, user record, row)",
        "max_field_bytes": "characters of one text field",
        "max_fields": "fields of one event after flattening",
        "max_json_depth": "nesting depth of JSON objects and arrays",
        "max_number_digits": "characters of one number",
        "max_event_errors": "per-event error entries listed per record (the rest are counted)",
    }
    for name in Limits.names():
        lim.add_argument(
            "--" + name.replace("_", "-"),
            type=int,
            default=getattr(Limits(), name),
            metavar="N",
            help=limit_help.get(name, name),
        )
    out = c.add_argument_group("output")
    dest = out.add_mutually_exclusive_group()
    dest.add_argument("--output-stream", help="write results to this Kinesis stream")
    dest.add_argument(
        "--output", help="write results as JSON lines to this file ('-' = stdout, the default)"
    )
    errs = out.add_mutually_exclusive_group()
    errs.add_argument("--error-stream", help="write bad records to this Kinesis stream")
    errs.add_argument(
        "--errors", help="write bad records as JSON lines to this file (default: stderr)"
    )
    out.add_argument(
        "--min-score", type=float, default=None, help="only output results scoring at least this"
    )
    out.add_argument(
        "--passthrough",
        help="input fields copied into each result under 'fields' (comma-separated names, "
        "or 'all'), as a KDA SELECT carried columns next to ANOMALY_SCORE",
    )
    out.add_argument(
        "--alerts",
        action="store_true",
        help="print each alert with its explanation (to stdout unless results go there, "
        "else stderr)",
    )
    al = c.add_argument_group(
        "alerting",
        "By default every key's scores go through its own adaptive threshold (the "
        "AnomalyDetector's: decayed mean + z-factor deviations, a floor, one alert per episode); "
        "results carry grade and is_anomaly. --alert-score replaces it by a fixed score.",
    )
    al.add_argument(
        "--alert-score",
        type=float,
        default=None,
        help="alert on scores >= this instead of the per-key grade (KDA-style fixed threshold)",
    )
    score_cmd.add_grading_flags(al, defaults=False)
    out.add_argument(
        "--no-status", action="store_true", help="no live status line (default: on a terminal)"
    )
    st = c.add_argument_group("state")
    st.add_argument(
        "--checkpoint",
        help="SQLite file or dynamodb://table (default .rcf-fast/<stream>.checkpoints.sqlite)",
    )
    st.add_argument(
        "--state",
        help="per-key state: a directory, s3://bucket/prefix or dynamodb://table/id "
        "(default .rcf-fast/<stream>.state); a state file of the previous release is migrated",
    )
    st.add_argument(
        "--max-keys",
        type=int,
        default=None,
        help="keep at most this many keys' forests in memory (others saved to --state, "
        "reloaded when their key comes back)",
    )
    st.add_argument(
        "--memory-limit-mb",
        type=float,
        default=None,
        help="keep the resident forests under this many MB (same mechanism as --max-keys)",
    )
    st.add_argument("--owner", help="lease owner id (default host:pid)")
    # Removed (consume is single-process); still parsed so that it fails with what to use instead.
    st.add_argument("--max-shards", type=int, default=None, help=argparse.SUPPRESS)
    st.add_argument(
        "--persist-interval",
        type=float,
        default=30.0,
        help="seconds between state saves + checkpoints (a save writes the keys changed since "
        "the last one, ~0.8 MB each at the default forest size; a crash replays at most this "
        "much, without learning it twice)",
    )
    st.add_argument(
        "--stop-after-idle",
        type=float,
        default=None,
        help="stop after this many seconds without records",
    )
    st.add_argument("--batch-limit", type=int, default=1000, help="GetRecords limit")
    st.add_argument(
        "--poll-interval", type=float, default=0.25, help="sleep between polls when idle"
    )
    f = c.add_argument_group("forest")
    f.add_argument("--num-trees", type=int, default=100)
    f.add_argument("--sample-size", type=int, default=256)
    f.add_argument("--shingle-size", type=int, default=1)
    f.add_argument("--time-decay", type=float, default=None)
    f.add_argument("--output-after", type=int, default=None)
    f.add_argument("--scoring", choices=["rcf", "codisp"], default="rcf")
    f.add_argument(
        "--seed", type=int, default=0, help="base seed; each key's forest derives its own"
    )
    c.add_argument("-v", "--verbose", action="count", default=0)
    from rcf_fast.nab import add_cli as add_nab_cli

    add_nab_cli(sub)
    return p


def _state_store(
    spec: str,
    session: Any,
    endpoint: str | None,
    max_keys: int | None = None,
    memory_limit_mb: float | None = None,
) -> Any:
    # Per-key state (kinesis/keystate.py): a directory, an S3 prefix or DynamoDB items; a state
    # of the previous release at the same spec is migrated by the first save.
    from rcf_fast.kinesis.errors import ConfigError
    from rcf_fast.kinesis.keystate import open_state_store

    if max_keys is not None and max_keys < 1:
        raise ConfigError(f"--max-keys {max_keys}: expected at least 1")
    if memory_limit_mb is not None and not memory_limit_mb > 0:
        raise ConfigError(f"--memory-limit-mb {memory_limit_mb}: expected more than 0")
    return open_state_store(
        spec,
        lambda service: session.client(service, endpoint_url=endpoint),
        max_keys=max_keys,
        memory_limit=None if memory_limit_mb is None else int(memory_limit_mb * 1024 * 1024),
    )


def _checkpoint_store(spec: str, namespace: str, session: Any, endpoint: str | None) -> Any:
    from rcf_fast.kinesis import DynamoDBCheckpointStore, SQLiteCheckpointStore

    if spec.startswith("dynamodb://"):
        store = DynamoDBCheckpointStore(
            session.client("dynamodb", endpoint_url=endpoint), spec[11:], namespace
        )
        store.ensure_table()
        return store
    os.makedirs(os.path.dirname(os.path.abspath(spec)), exist_ok=True)
    return SQLiteCheckpointStore(spec, namespace)


def _grading(args: argparse.Namespace) -> dict[str, Any] | None:
    """The per-key grading parameters of ``consume``'s flags; None with ``--alert-score``."""
    from rcf_fast.kinesis.errors import ConfigError

    names = [name for name, _kind, _text in score_cmd.GRADING_FLAGS]
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    if args.alert_score is None:
        return given
    if given:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise ConfigError(
            f"--alert-score (a fixed threshold) and {flags} (the per-key grading) exclude each "
            "other: use one"
        )
    return None


def _alert_printer(stream: TextIO) -> Any:
    from rcf_fast.kinesis import CallbackSink, explain

    def show(item: dict[str, Any]) -> None:
        if "score" not in item or not item.get("is_anomaly"):
            return
        when = item.get("timestamp", "")
        if isinstance(when, (int, float)):
            when = datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        why = "; ".join(explain(item)) or "-"
        grade = f" grade={item['grade']:.2f}" if "grade" in item else ""
        stream.write(
            f"ALERT {item['key']} score={item['score']:.2f}{grade} {when} "
            f"[{item['shard_id']} #{item['sequence_number']}] {why}\n"
        )
        stream.flush()

    return CallbackSink(show)


class StatusLine:
    """A one-line live status on a terminal: records/s, lag, anomalies, errors."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last = 0.0
        self.last_records = 0
        self.rate = 0.0

    def __call__(self, status: Any) -> None:
        now = time.monotonic()
        if now - self.last < 0.5:
            return
        if self.last:
            self.rate = (status.records - self.last_records) / (now - self.last)
        self.last, self.last_records = now, status.records
        self.stream.write(
            f"\r{status.records} records  {self.rate:,.0f} rec/s  lag {status.lag_ms / 1000:.1f}s  "
            f"anomalies {status.anomalies}  errors {status.errors}  shards {status.shards_owned}   "
        )
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")


class _RetryingSession:
    """A boto3 session whose clients use botocore's standard retry mode (see kinesis.aws)."""

    def __init__(self, session: Any, config: Any) -> None:
        self.session = session
        self.config = config

    def client(self, service: str, endpoint_url: str | None = None) -> Any:
        return self.session.client(service, endpoint_url=endpoint_url, config=self.config)


def consume(args: argparse.Namespace) -> int:
    import boto3

    from rcf_fast.kinesis import Boto3ShardSource, Consumer, JsonLinesSink, KinesisSink, TeeSink
    from rcf_fast.kinesis.aws import client_config
    from rcf_fast.kinesis.config import ScorerConfig, _unescape, build_step
    from rcf_fast.kinesis.consumer import MAX_SHARDS_REMOVED
    from rcf_fast.kinesis.errors import ConfigError
    from rcf_fast.kinesis.limits import Limits

    if args.max_shards is not None:  # before any file, sink or client is made
        raise ConfigError(MAX_SHARDS_REMOVED)
    forest = {
        "num_trees": args.num_trees,
        "sample_size": args.sample_size,
        "shingle_size": args.shingle_size,
        "scoring": args.scoring,
        "seed": args.seed,
    }
    if args.time_decay is not None:
        forest["time_decay"] = args.time_decay
    if args.output_after is not None:
        forest["output_after"] = args.output_after
    cfg = ScorerConfig(
        format=args.format,
        message_format=args.message_format,
        fields=",".join(args.fields) if args.fields else None,
        values=args.values.split(",") if args.values else None,
        key=args.key,
        vpc_format=args.vpc_format,
        timestamp_field=args.timestamp_field,
        forest=forest,
        anomaly_threshold=args.alert_score if args.alert_score is not None else 2.0,
        grading=_grading(args),
        limits=Limits(**{name: getattr(args, name) for name in Limits.names()}),
        passthrough=[p.strip() for p in args.passthrough.split(",") if p.strip()]
        if args.passthrough
        else None,
        row_delimiter=_unescape(args.row_delimiter),
    ).validate()
    session = _RetryingSession(boto3.session.Session(region_name=args.region), client_config())
    kinesis = session.client("kinesis", endpoint_url=args.endpoint_url)
    results_to_stdout = not args.output_stream and (args.output in (None, "-"))
    results: Any = (
        KinesisSink(kinesis, args.output_stream, args.min_score)
        if args.output_stream
        else JsonLinesSink(args.output or "-", args.min_score)
    )
    errors: Any = (
        KinesisSink(kinesis, args.error_stream, partition_key_field="shard_id")
        if args.error_stream
        else JsonLinesSink(args.errors)
        if args.errors
        else JsonLinesSink(sys.stderr)
    )
    if args.alerts:
        alert_out = sys.stderr if results_to_stdout else sys.stdout
        results = TeeSink([results, _alert_printer(alert_out)])
    step = build_step(cfg, results, errors)
    base = os.path.join(".rcf-fast", args.stream)
    state = _state_store(
        args.state or base + ".state",
        session,
        args.endpoint_url,
        args.max_keys,
        args.memory_limit_mb,
    )
    checkpoints = _checkpoint_store(
        args.checkpoint or base + ".checkpoints.sqlite", args.stream, session, args.endpoint_url
    )
    status_line = StatusLine(sys.stderr) if (sys.stderr.isatty() and not args.no_status) else None
    start = {"trim-horizon": "TRIM_HORIZON", "latest": "LATEST", "at-timestamp": "AT_TIMESTAMP"}[
        args.start
    ]
    ts = datetime.fromisoformat(args.timestamp) if args.timestamp else None
    if ts is not None and ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)  # a time without offset means UTC, not local time
    consumer = Consumer(
        Boto3ShardSource(kinesis, args.stream),
        step,
        checkpoints,
        state,
        owner=args.owner,
        initial_position=start,
        timestamp=ts,
        batch_limit=args.batch_limit,
        persist_interval=args.persist_interval,
        idle_sleep=args.poll_interval,
        on_status=status_line,
    )
    # SIGTERM (docker stop, systemd, Kubernetes) ends like Ctrl-C: persist, checkpoint, release.
    signal.signal(signal.SIGTERM, lambda signum, frame: consumer.stop())
    try:
        status = consumer.run(stop_after_idle=args.stop_after_idle)
    except KeyboardInterrupt:
        status = consumer.status
    finally:
        if status_line:
            status_line.close()
        results.close()
        errors.close()
    logging.getLogger("rcf_fast.kinesis").info(
        "done: %d records, %d scored, %d errors, %d anomalies, %d skipped (replayed or no data)",
        status.records,
        status.scored,
        status.errors,
        status.anomalies,
        status.skipped,
    )
    sys.stderr.write(
        f"rcf-fast: {status.records} records, {status.scored} scored, {status.errors} errors, "
        f"{status.anomalies} anomalies "
        f"({'per-key grade' if args.alert_score is None else f'score >= {args.alert_score}'}), "
        f"{status.skipped} skipped\n"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rcf-fast`` console script."""
    args = _parser().parse_args(argv)
    if args.version:
        from rcf_fast import __version__

        print(f"rcf-fast {__version__}")
        return 0
    if args.command == "nab":
        from rcf_fast.nab import cli_main as nab_main

        return nab_main(args)
    if args.command == "score":
        return score_cmd.run(args)
    if args.command != "consume":
        _parser().print_help(sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        sys.stderr.write("rcf-fast: error: consume needs boto3: pip install 'rcf_fast[kinesis]'\n")
        return EXIT_CONFIG

    from rcf_fast.kinesis.errors import ConfigError, KinesisError

    try:
        return consume(args)
    except ConfigError as exc:
        sys.stderr.write(f"rcf-fast: error: {exc}\n")
        return EXIT_CONFIG
    except (KinesisError, ClientError, BotoCoreError) as exc:
        # AWS and store failures (no such stream, no credentials, endpoint down, state from
        # another configuration): one clear line; -v shows the traceback.
        logging.getLogger("rcf_fast.kinesis").debug("failure", exc_info=True)
        sys.stderr.write(f"rcf-fast: error: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
