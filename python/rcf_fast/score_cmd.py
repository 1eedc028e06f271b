"""``rcf-fast score FILE|-``: score a CSV or JSON-lines file (or stdin) row by row.

Every input row is written out again with its ``score`` (CSV or JSON lines). Rows that cannot be
read are reported on stderr with their line number and skipped; the forest never sees them.
Input is read one physical line at a time, so stdin streams: each result is written (and
flushed) as soon as its row has arrived, and memory stays bounded (lines longer than
``MAX_LINE_BYTES`` are skipped without being held).

By default an ``AnomalyDetector`` also grades each score: ``grade`` (0 unless the row starts
an anomaly episode), ``is_anomaly`` and, for an alert, ``explanation`` (per value column its
attribution, direction, expected value and ``expected_over``: 1, or the points of the coarse
scale's block whose mean was expected). The ``score`` column is the same RCF score either
way; ``--no-alerts`` writes the score only. ``--scales`` sets the detector's coarse scales
(default ``16x4,32x8``, ``none`` for the forest's scores alone); an alert of a coarse scale is
explained by the block mean its forest expected. :class:`Scorer` turns one row's values into the
output fields; readers, writers and the plot take any fields.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Callable

EXIT_USAGE = 2
MAX_LINE_BYTES = 1 << 20  # longer lines are reported and skipped, never held in memory
BATCH_ROWS = 1024  # rows of a file scored per batch call
FLOAT32_MAX = 3.4028234663852886e38
TIMESTAMP_NAMES = ("timestamp", "time", "date", "datetime", "ts")


class InputError(ValueError):
    """The input as a whole cannot be scored (no header, unknown column, empty file)."""


class RowError(ValueError):
    """One row cannot be read; the message says what was wrong and what was expected."""


# ---- command line --------------------------------------------------------------------------


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``score`` on the ``rcf-fast`` sub-command parser."""
    p = sub.add_parser(
        "score",
        help="score a CSV or JSON-lines file (or stdin), writing every row with its score",
        description="Score each row of a CSV file with a header (NAB files as they are) or a "
        "JSON-lines file with one RandomCutForest, in order, and write every row again with "
        "its score and, by default, its alert grade. Unreadable rows are reported on stderr and "
        "skipped.",
    )
    p.add_argument("input", metavar="FILE|-", help="input file, or - for stdin (streamed)")
    io_ = p.add_argument_group("input and output")
    io_.add_argument(
        "--format",
        choices=["csv", "jsonl"],
        help="input format (default: from the extension, .jsonl/.ndjson/.json = jsonl, else csv)",
    )
    io_.add_argument(
        "--columns",
        help="comma-separated value columns fed to the forest (default: every numeric column "
        "of the first data row except the timestamp)",
    )
    io_.add_argument(
        "--timestamp",
        help="timestamp column, kept as it is and used as the plot's x axis "
        f"(default: the first of {', '.join(TIMESTAMP_NAMES)} present)",
    )
    io_.add_argument("-o", "--output", default="-", help="output file (default: - = stdout)")
    io_.add_argument(
        "--output-format",
        choices=["csv", "jsonl"],
        help="output format (default: jsonl for a .jsonl/.ndjson output file, else csv)",
    )
    io_.add_argument(
        "--score-column", default="score", help="name of the added score field (default: score)"
    )
    io_.add_argument(
        "--threshold",
        type=float,
        default=2.5,
        help="scores at or above this count as anomalies in the summary and plot (default: 2.5)",
    )
    io_.add_argument("--plot", metavar="PNG", help="write series, score and anomalies to PNG")
    io_.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: for files, when stderr is a terminal)",
    )
    f = p.add_argument_group("forest")
    f.add_argument(
        "--shingle-size", type=int, default=1, help="consecutive rows per point (default: 1)"
    )
    f.add_argument("--num-trees", type=int, default=100, help="(default: 100)")
    f.add_argument("--sample-size", type=int, default=256, help="points per tree (default: 256)")
    f.add_argument(
        "--seed", type=int, default=0, help="same seed and input, same scores (default: 0)"
    )
    f.add_argument(
        "--time-decay", type=float, default=None, help="sampler decay (default 0.1/sample size)"
    )
    f.add_argument(
        "--sampler", choices=["decay", "window"], default="decay", help="(default: decay)"
    )
    f.add_argument("--scoring", choices=["rcf", "codisp"], default="rcf", help="(default: rcf)")
    f.add_argument(
        "--output-after",
        type=int,
        default=None,
        help="scores are 0 until this many rows were learned (default: sample size / 4)",
    )
    f.add_argument(
        "--threads",
        type=int,
        default=None,
        help="worker threads (default: all; 1 with alerts, which go one row at a time)",
    )
    a = p.add_argument_group(
        "alerts",
        "an AnomalyDetector grades the scores: adaptive threshold, one alert per anomaly "
        "episode, explained per column",
    )
    a.add_argument(
        "--alerts",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add grade, is_anomaly and explanation columns (default: on; --no-alerts writes "
        "the score only)",
    )
    add_grading_flags(a, defaults=True)
    a.add_argument(
        "--scales",
        default=DEFAULT_SCALES,
        metavar="BLOCKxSHINGLE,...",
        help="the detector's coarse scales: block means of BLOCK rows, SHINGLE of them per point "
        f"of a forest of their own; 'none': the forest's scores alone (default: {DEFAULT_SCALES})",
    )
    p.set_defaults(run=run)
    return p


#: ``--scales`` by default: ``AnomalyDetector``'s default scales.
DEFAULT_SCALES = "16x4,32x8"


def parse_scales(text: str) -> list[tuple[int, int]]:
    """``--scales``: ``none`` or comma-separated ``BLOCKxSHINGLE`` pairs (``16x4,32x8``);
    the ranges are the detector's to check."""
    text = text.strip().lower()
    if text == "none":
        return []
    out = []
    for part in text.split(","):
        block, sep, shingle = part.strip().partition("x")
        block, shingle = block.strip(), shingle.strip()
        if not (
            sep and block.isascii() and block.isdigit() and shingle.isascii() and shingle.isdigit()
        ):
            raise InputError(
                f"--scales {text!r}: expected BLOCKxSHINGLE pairs of whole numbers separated by "
                "commas (e.g. 16x4,32x8), or none"
            )
        out.append((int(block), int(shingle)))
    return out


#: The alert grading flags (``Thresholder`` parameters): name, type, help.
GRADING_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("z_factor", float, "alert at mean + z-factor * deviation of recent scores"),
    ("score_floor", float, "lowest score threshold"),
    ("warmup", int, "scores seen before any alert"),
    ("episode_gap", int, "rows below the threshold that end an anomaly episode"),
    ("alert_spacing", int, "rows after an alert without a new alert"),
)


def add_grading_flags(group: Any, *, defaults: bool) -> None:
    """Adds the grading flags of ``rcf-fast score`` and ``rcf-fast consume`` to ``group``, their
    defaults those of ``rcf_fast.Thresholder``; with ``defaults=False`` an omitted flag is None
    (``consume`` tells the flags given apart from the rest)."""
    import rcf_fast

    template = rcf_fast.Thresholder()
    for name, kind, text in GRADING_FLAGS:
        default = getattr(template, name)
        group.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=default if defaults else None,
            help=f"{text} (default: {default:g})",
        )


def run(args: argparse.Namespace) -> int:
    """Run ``rcf-fast score``; returns the exit code."""
    try:
        return _run(args)
    except InputError as exc:
        sys.stderr.write(f"rcf-fast score: error: {exc}\n")
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, like other Unix filters.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    plotter = Plot(args.plot, args.threshold) if args.plot else None  # fails before any work
    if args.input == "-":
        return _score(args, sys.stdin.buffer, plotter)
    try:
        raw = open(args.input, "rb")  # noqa: SIM115 (closed below, stdin is not)
    except OSError as exc:
        raise InputError(f"cannot open {args.input}: {exc.strerror}") from exc
    with raw:
        return _score(args, raw, plotter)


def _score(args: argparse.Namespace, raw: IO[bytes], plotter: Plot | None) -> int:
    fmt = args.format or _format_of(args.input, default="csv")
    out_fmt = args.output_format or _format_of(args.output, default="csv")
    streaming = args.input == "-"
    report = Reporter(sys.stderr)
    lines = LineReader(raw, report)
    reader = (CsvRows if fmt == "csv" else JsonRows)(lines, args.columns, args.timestamp, report)
    scorer = Scorer(args, reader.columns)
    if args.score_column in reader.names:
        raise InputError(
            f"the input already has a column {args.score_column!r}; "
            "name the added one with --score-column"
        )
    clash = [n for n in scorer.fields[1:] if n in reader.names]
    if clash:
        raise InputError(
            f"the input already has a column {clash[0]!r}; add --no-alerts to write the score only"
        )
    out_names = reader.names + [args.score_column if n == "score" else n for n in scorer.fields]
    out = sys.stdout if args.output == "-" else _open_output(args.output)
    writer = (
        CsvWriter(out, out_names)
        if out_fmt == "csv"
        else JsonWriter(out, out_names, reader.columns if fmt == "csv" else [], len(scorer.fields))
    )
    size = 0 if streaming else os.fstat(raw.fileno()).st_size
    show_progress = (
        args.progress if args.progress is not None else (not streaming and sys.stderr.isatty())
    )
    progress = Progress(sys.stderr, size) if show_progress and size else None
    counts = {"scored": 0, "anomalies": 0, "alerts": 0}

    def emit(rows: list[Row]) -> None:
        for row, extra in scorer.score_rows(rows, report):
            writer.write(row, [extra[n] for n in scorer.fields])
            counts["scored"] += 1
            counts["anomalies"] += extra["score"] >= args.threshold
            counts["alerts"] += bool(extra.get("is_anomaly"))
            if plotter:
                plotter.add(
                    row.timestamp, row.values, extra["score"], bool(extra.get("is_anomaly"))
                )
        if streaming:
            out.flush()
        if progress:
            progress.update(lines.bytes_read, counts["scored"])

    # A file is scored in batches (one batch call: all cores without per-point hand-offs, the
    # same scores as row by row); stdin row by row, each result written as its row arrives.
    batch = 1 if streaming else BATCH_ROWS
    pending: list[Row] = []
    try:
        for row in reader:
            pending.append(row)
            if len(pending) >= batch:
                emit(pending)
                pending = []
        emit(pending)
    finally:
        if progress:
            progress.close()
        out.flush()
        if out is not sys.stdout:
            out.close()
    if plotter:
        plotter.save(reader.columns, reader.timestamp)
    alerts = f"{counts['alerts']} alerts (anomaly episodes), " if scorer.alerts else ""
    sys.stderr.write(
        f"rcf-fast score: {counts['scored']} rows scored, {report.skipped} skipped, "
        f"{alerts}{counts['anomalies']} with score >= {args.threshold:g}\n"
    )
    return 0


def _format_of(path: str, default: str) -> str:
    return "jsonl" if path.lower().endswith((".jsonl", ".ndjson", ".json")) else default


def _open_output(path: str) -> IO[str]:
    try:
        return open(path, "w", newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from exc


# ---- reading -------------------------------------------------------------------------------


class Reporter:
    """Reports skipped rows on stderr: ``line N: what was wrong``."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.skipped = 0

    def skip(self, line: int, why: str) -> None:
        self.skipped += 1
        self.stream.write(f"rcf-fast score: line {line}: {why}; row skipped\n")
        self.stream.flush()


class LineReader:
    """Decoded lines with their 1-based line numbers, one ``readline`` at a time (so a pipe
    streams), each at most ``MAX_LINE_BYTES`` long; longer and undecodable lines are reported.
    """

    def __init__(self, raw: IO[bytes], report: Reporter) -> None:
        self.raw = raw
        self.report = report
        self.line = 0
        self.bytes_read = 0

    def __iter__(self) -> Iterator[tuple[int, str]]:
        while True:
            chunk = self.raw.readline(MAX_LINE_BYTES + 1)
            if not chunk:
                return
            self.line += 1
            self.bytes_read += len(chunk)
            if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
                self._discard_rest()
                self.report.skip(self.line, f"longer than {MAX_LINE_BYTES} bytes")
                continue
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.report.skip(self.line, f"not UTF-8 text (byte {exc.start})")
                continue
            if self.line == 1:
                text = text.lstrip("\ufeff")  # a byte-order mark from spreadsheet exports
            text = text.rstrip("\r\n")
            if text.strip():
                yield self.line, text

    def _discard_rest(self) -> None:
        while True:
            chunk = self.raw.readline(MAX_LINE_BYTES)
            self.bytes_read += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                return


@dataclass
class Row:
    line: int
    fields: dict[str, Any]  # the row as read, written out again
    values: list[float]  # the value columns, in --columns order
    timestamp: Any = None


@dataclass
class _Rows:
    lines: LineReader
    columns_arg: str | None
    timestamp_arg: str | None
    report: Reporter
    names: list[str] = field(default_factory=list)  # every input field, in order
    columns: list[str] = field(default_factory=list)  # value columns
    timestamp: str | None = None
    _it: Iterator[tuple[int, str]] | None = None
    _first: Row | None = None

    def __iter__(self) -> Iterator[Row]:
        if self._first is not None:
            yield self._first
            self._first = None
        assert self._it is not None
        for line, text in self._it:
            try:
                yield self.parse(line, text)
            except RowError as exc:
                self.report.skip(line, str(exc))

    def parse(self, line: int, text: str) -> Row:
        raise NotImplementedError

    def _choose(self, first: dict[str, Any]) -> None:
        """Pick the timestamp and value columns from the options or the first row."""
        if self.timestamp_arg is not None:
            if self.timestamp_arg not in self.names:
                raise InputError(
                    f"--timestamp {self.timestamp_arg!r} is not one of {_listing(self.names)}"
                )
            self.timestamp = self.timestamp_arg
        else:
            self.timestamp = next((n for n in TIMESTAMP_NAMES if n in self.names), None)
        if self.columns_arg is not None:
            wanted = [c.strip() for c in self.columns_arg.split(",") if c.strip()]
            missing = [c for c in wanted if c not in self.names]
            if missing or not wanted:
                raise InputError(
                    f"--columns {self.columns_arg!r}: expected names from {_listing(self.names)}"
                )
            self.columns = wanted
            return
        self.columns = [n for n in self.names if n != self.timestamp and _is_number(first.get(n))]
        if not self.columns:
            raise InputError(
                f"no numeric column in the first data row ({_short(first)}); name them with --columns"
            )

    def _start(self, parse_first: Callable[[int, str], dict[str, Any]]) -> None:
        """Read rows until one parses, choose the columns from it, and keep it as row one."""
        assert self._it is not None
        for line, text in self._it:
            try:
                fields = parse_first(line, text)
            except RowError as exc:
                self.report.skip(line, str(exc))
                continue
            self._choose(fields)
            try:
                self._first = self.parse(line, text)
            except RowError as exc:
                self.report.skip(line, str(exc))
            return
        raise InputError("no data rows")

    def _values(self, fields: dict[str, Any]) -> list[float]:
        values = []
        for c in self.columns:
            v = fields.get(c)
            x = _to_float(v)
            if x is None:
                raise RowError(f"column {c!r}: {_short(v)} is not a number")
            if not math.isfinite(x) or abs(x) > FLOAT32_MAX:
                raise RowError(f"column {c!r}: {_short(v)} is not a finite float32 number")
            values.append(x)
        return values


class CsvRows(_Rows):
    """CSV with a header line; one record per line (quoted newlines are not supported)."""

    def __init__(
        self, lines: LineReader, columns: str | None, timestamp: str | None, report: Reporter
    ) -> None:
        super().__init__(lines, columns, timestamp, report)
        self._it = iter(lines)
        header = next(self._it, None)
        if header is None:
            raise InputError("empty input: expected a CSV header line")
        try:
            self.names = [n.strip() for n in _csv_fields(header[1])]
        except csv.Error as exc:
            raise InputError(f"line {header[0]}: the CSV header is not CSV ({exc})") from exc
        if len(set(self.names)) != len(self.names) or not all(self.names):
            raise InputError(
                f"the CSV header needs distinct, non-empty names: {_listing(self.names)}"
            )
        self._start(self._fields)

    def _fields(self, line: int, text: str) -> dict[str, Any]:
        try:
            cells = _csv_fields(text)
        except csv.Error as exc:
            raise RowError(f"not CSV ({exc})") from exc
        if len(cells) != len(self.names):
            raise RowError(f"{len(cells)} fields, expected {len(self.names)} like the header")
        return dict(zip(self.names, cells))

    def parse(self, line: int, text: str) -> Row:
        fields = self._fields(line, text)
        ts = fields.get(self.timestamp) if self.timestamp else None
        return Row(line, fields, self._values(fields), ts)


class JsonRows(_Rows):
    """JSON lines: one object per line; value fields are numbers (or strings of numbers)."""

    def __init__(
        self, lines: LineReader, columns: str | None, timestamp: str | None, report: Reporter
    ) -> None:
        super().__init__(lines, columns, timestamp, report)
        self._known: set[str] = set()
        self._it = iter(lines)
        self._start(self._object)

    def _object(self, line: int, text: str) -> dict[str, Any]:
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise RowError(f"not JSON ({str(exc)[:80]})") from exc
        if not isinstance(obj, dict):
            raise RowError(f"expected a JSON object, got {type(obj).__name__}")
        if not self.names:  # the first object's keys name the columns; later keys are added
            self.names = list(obj)
            self._known = set(obj)
        return obj

    def parse(self, line: int, text: str) -> Row:
        obj = self._object(line, text)
        for k in obj:
            if k not in self._known:
                self._known.add(k)
                self.names.append(k)
        ts = obj.get(self.timestamp) if self.timestamp else None
        return Row(line, obj, self._values(obj), ts)


def _csv_fields(text: str) -> list[str]:
    return next(csv.reader([text]), [])


def _is_number(v: Any) -> bool:
    return _to_float(v) is not None


def _to_float(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        try:
            return float(v)
        except OverflowError:  # an integer beyond float range
            return math.inf
    if isinstance(v, str) and len(v) <= 100:
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _listing(names: list[str]) -> str:
    """At most ten names, so a hostile header cannot flood the message."""
    shown = ", ".join(repr(_short(n)) if len(repr(n)) > 40 else repr(n) for n in names[:10])
    return f"[{shown}{', ...' if len(names) > 10 else ''}] ({len(names)} names)"


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


# ---- scoring -------------------------------------------------------------------------------


class Scorer:
    """The rows' scorer. ``fields`` names what ``score_rows`` adds to each row.

    With alerts (the default) an ``AnomalyDetector`` with the forest options scores the rows
    and grades the scores: ``score`` (the same RCF score a ``RandomCutForest`` with these
    options gives), ``grade``, ``is_anomaly`` and, for an alert, ``explanation`` (per value
    column: ``attribution``, ``direction`` and ``expected``). Without alerts
    (``--no-alerts``) a ``RandomCutForest`` gives ``score`` only.
    """

    def __init__(self, args: argparse.Namespace, columns: Sequence[str]) -> None:
        import rcf_fast

        dimensions = len(columns)
        self.columns = list(columns)
        self.alerts = bool(getattr(args, "alerts", True))
        self.fields: tuple[str, ...] = (
            ("score", "grade", "is_anomaly", "explanation") if self.alerts else ("score",)
        )
        options: dict[str, Any] = {
            "dimensions": dimensions,
            "shingle_size": args.shingle_size,
            "num_trees": args.num_trees,
            "sample_size": args.sample_size,
            "time_decay": args.time_decay,
            "sampler": args.sampler,
            "scoring": args.scoring,
            "output_after": args.output_after,
            "seed": args.seed,
            "threads": args.threads,
        }
        try:
            if self.alerts:
                # The detector goes one row at a time: one thread unless told otherwise.
                options["threads"] = 1 if args.threads is None else args.threads
                scales = parse_scales(getattr(args, "scales", DEFAULT_SCALES))
                self.detector = rcf_fast.AnomalyDetector(
                    **options,
                    z_factor=args.z_factor,
                    score_floor=args.score_floor,
                    warmup=args.warmup,
                    episode_gap=args.episode_gap,
                    alert_spacing=args.alert_spacing,
                    scales=scales,
                )
            else:
                self.forest = rcf_fast.RandomCutForest(**options)
        except (ValueError, TypeError, OverflowError) as exc:
            raise InputError(f"forest options: {exc}") from exc
        self.one = dimensions == 1

    def _explanation(self, high: Any, low: Any, expected: Any, scale: int) -> dict[str, Any]:
        # ``expected_over``: the points ``expected`` is a mean of (1: the row's own value; a
        # coarse scale's block otherwise).
        out = {}
        for j, name in enumerate(self.columns):
            h, lo, e = float(high[j]), float(low[j]), float(expected[j])
            out[name] = {
                "attribution": h + lo,
                "direction": "HIGH" if h >= lo else "LOW",
                "expected": e if math.isfinite(e) else None,
                "expected_over": int(scale),
            }
        return out

    def step(self, values: list[float]) -> dict[str, Any]:
        """Score, then learn, one row."""
        if not self.alerts:
            return {"score": self.forest.score_update(values[0] if self.one else values)}
        r = self.detector.process(values)
        explanation = None
        if r.is_anomaly and r.attribution is not None and r.expected is not None:
            explanation = self._explanation(
                r.attribution.high, r.attribution.low, r.expected, r.scale
            )
        return {
            "score": r.score,
            "grade": r.grade,
            "is_anomaly": r.is_anomaly,
            "explanation": explanation,
        }

    def step_many(self, rows: list[list[float]]) -> list[dict[str, Any]]:
        """Score, then learn, rows in order: one batch call, the same results as ``step``."""
        import numpy as np

        x = np.asarray(rows, dtype=np.float64)
        if not self.alerts:
            scores = self.forest.score_update_many(x[:, 0] if self.one else x)
            return [{"score": float(s)} for s in scores]
        out = self.detector.process_many(x)
        results = []
        for i, (score, grade, alert) in enumerate(
            zip(out["score"].tolist(), out["grade"].tolist(), out["is_anomaly"].tolist())
        ):
            explanation = None
            if alert:
                explanation = self._explanation(
                    out["attribution_high"][i],
                    out["attribution_low"][i],
                    out["expected"][i],
                    out["scale"][i],
                )
            results.append(
                {"score": score, "grade": grade, "is_anomaly": alert, "explanation": explanation}
            )
        return results

    def score_rows(self, rows: list[Row], report: Reporter) -> Iterator[tuple[Row, dict[str, Any]]]:
        """(row, fields) for each row the forest accepts; the others are reported."""
        if len(rows) > 1:
            try:
                yield from zip(rows, self.step_many([r.values for r in rows]))
                return
            except ValueError:  # a value the forest refuses; it is unchanged: go row by row
                pass
        for row in rows:
            try:
                extra = self.step(row.values)
            except ValueError as exc:
                report.skip(row.line, str(exc))
                continue
            yield row, extra


# ---- writing -------------------------------------------------------------------------------


class CsvWriter:
    def __init__(self, out: IO[str], names: list[str]) -> None:
        self.out = out
        self.names = names  # CSV needs its columns up front: later JSON keys are not written
        self.w = csv.writer(out, lineterminator="\n")
        self.w.writerow(names)
        self.n_in = len(names)

    def write(self, row: Row, extra: list[Any]) -> None:
        n = self.n_in - len(extra)
        cells = [_csv_cell(row.fields.get(k)) for k in self.names[:n]]
        self.w.writerow(cells + [_csv_cell(v) for v in extra])


class JsonWriter:
    """One object per row; ``numeric`` columns (CSV input) become JSON numbers."""

    def __init__(self, out: IO[str], names: list[str], numeric: list[str], extra: int) -> None:
        self.out = out
        self.extra_names = names[len(names) - extra :]
        self.numeric = numeric

    def write(self, row: Row, extra: list[Any]) -> None:
        obj = dict(row.fields)
        for c, v in zip(self.numeric, row.values):
            text = obj[c].strip()
            obj[c] = int(text) if text.lstrip("+-").isdigit() and len(text) < 19 else v
        obj.update(zip(self.extra_names, extra))
        self.out.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return v


# ---- progress and plot ---------------------------------------------------------------------


class Progress:
    """``[#####.....] 45%  12,345 rows  40,000 rows/s`` on one terminal line."""

    def __init__(self, stream: IO[str], size: int) -> None:
        self.stream = stream
        self.size = size
        self.start = self.last = time.monotonic()
        self.done = self.rows = 0

    def update(self, done: int, rows: int) -> None:
        self.done, self.rows = done, rows
        now = time.monotonic()
        if now - self.last >= 0.1:
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        frac = min(self.done / self.size, 1.0)
        bar = "#" * int(frac * 30)
        rate = self.rows / max(now - self.start, 1e-9)
        self.stream.write(f"\r[{bar:30}] {frac:4.0%}  {self.rows:,} rows  {rate:,.0f} rows/s ")
        self.stream.flush()

    def close(self) -> None:
        self._draw(time.monotonic())  # the final state, however short the run
        self.stream.write("\n")
        self.stream.flush()


class Plot:
    """Collects (timestamp, values, score) and draws series, score and anomalies to a PNG."""

    def __init__(self, path: str, threshold: float) -> None:
        try:
            import matplotlib
        except ImportError as exc:
            raise InputError("--plot needs matplotlib: pip install 'rcf_fast[plot]'") from exc
        matplotlib.use("Agg")
        self.path = path
        self.threshold = threshold
        self.stamps: list[Any] = []
        self.values: list[list[float]] = []
        self.scores: list[float] = []
        self.alerts: list[int] = []

    def add(self, stamp: Any, values: list[float], score: float, alert: bool = False) -> None:
        if alert:
            self.alerts.append(len(self.scores))
        self.stamps.append(stamp)
        self.values.append(values)
        self.scores.append(score)

    def save(self, columns: Sequence[str], timestamp: str | None) -> None:
        import matplotlib.pyplot as plt

        x: Sequence[Any] = _as_times(self.stamps) or list(range(len(self.scores)))
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(14, 6), sharex=True)
        for j, name in enumerate(columns[:10]):
            ax1.plot(x, [v[j] for v in self.values], lw=0.6, label=name)
        if len(columns) > 1:
            ax1.legend(loc="upper right", fontsize="small")
        ax1.set_ylabel("value")
        ax2.plot(x, self.scores, lw=0.6, color="#d62728")
        hits = [i for i, s in enumerate(self.scores) if s >= self.threshold]
        ax2.scatter(
            [x[i] for i in hits],
            [self.scores[i] for i in hits],
            color="black",
            s=12,
            zorder=3,
            label=f"score >= {self.threshold:g} ({len(hits)})",
        )
        for i in hits:
            ax1.axvline(x[i], color="#ff7f0e", alpha=0.4, lw=1)
        if self.alerts:
            ax1.scatter(
                [x[i] for i in self.alerts],
                [self.values[i][0] for i in self.alerts],
                marker="v",
                color="black",
                s=40,
                zorder=3,
                label=f"alerts ({len(self.alerts)})",
            )
            ax1.legend(loc="upper right", fontsize="small")
        ax2.axhline(self.threshold, color="grey", lw=0.6, ls="--")
        ax2.legend(loc="upper right", fontsize="small")
        ax2.set_ylabel("anomaly score")
        ax2.set_xlabel(timestamp or "row")
        ax1.set_title(
            f"rcf-fast score: {len(self.scores):,} rows, {len(hits)} with score >= "
            f"{self.threshold:g} (orange lines)"
            + (f", {len(self.alerts)} alerts (triangles)" if self.alerts else "")
        )
        fig.tight_layout()
        try:
            fig.savefig(self.path, dpi=110)
        except OSError as exc:
            raise InputError(f"cannot write {self.path}: {exc.strerror}") from exc
        finally:
            plt.close(fig)


def _as_times(stamps: list[Any]) -> list[Any] | None:
    """Timestamps as datetimes when every one parses (ISO text or epoch seconds), else None."""
    from datetime import datetime, timezone

    out = []
    for s in stamps:
        try:
            if isinstance(s, (int, float)) and not isinstance(s, bool):
                out.append(datetime.fromtimestamp(s, timezone.utc))
            elif isinstance(s, str):
                out.append(datetime.fromisoformat(s.strip().replace("Z", "+00:00")))
            else:
                return None
        except (ValueError, OverflowError, OSError):
            return None
    return out or None


__all__ = ["InputError", "RowError", "Scorer", "add_parser", "run"]
