"""The whole Kinesis pipeline on an embedded Kinesis: no cloud account, under two minutes.

1. starts moto's server on 127.0.0.1 (a random free port) as the local Kinesis,
2. creates two streams and replays, as CloudWatch-Logs subscription payloads (gzip JSON):
   - the bundled NYC taxi series (data/nyc_taxi.csv, 10,320 half-hours) as JSON log messages,
   - synthetic VPC flow logs of three network interfaces with two planted incidents,
   plus a few malformed records (not gzip, broken messages, NODATA lines) and a CONTROL_MESSAGE,
3. runs ``rcf-fast consume`` on each stream, printing alerts with their explanation as they happen,
4. writes out/anomalies.jsonl, out/errors.jsonl, all scores and out/kinesis_demo.png.

``--aws`` uses real AWS (your credentials and region) instead of the embedded server; the demo
then creates streams named ``rcf-demo-*`` and deletes them at the end (Kinesis bills per
shard-hour).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NYC_CSV = ROOT / "data" / "nyc_taxi.csv"
# NAB's labelled anomaly windows of nyc_taxi: marathon, Thanksgiving, Christmas, New Year, blizzard.
NAB_WINDOWS = [
    ("2014-10-30 15:30", "2014-11-03 22:30"),
    ("2014-11-25 12:00", "2014-11-29 19:00"),
    ("2014-12-23 11:30", "2014-12-27 18:30"),
    ("2014-12-29 21:30", "2015-01-03 04:30"),
    ("2015-01-24 20:30", "2015-01-29 03:30"),
]
ENIS = ["eni-0web", "eni-0db", "eni-0bastion"]
NYC_ALERT, VPC_ALERT = 1.6, 3.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    with open(log_path, "wb") as log:  # the server keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [*cmd, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"moto server exited ({proc.returncode}); see {log_path}")
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto server did not start within 30 s")


def cwl(messages: list[str], group: str, stream: str, t0_ms: int, step_ms: int) -> bytes:
    body = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["rcf-demo"],
        "logEvents": [
            {"id": f"{t0_ms}-{i}", "timestamp": t0_ms + i * step_ms, "message": m}
            for i, m in enumerate(messages)
        ],
    }
    return gzip.compress(json.dumps(body).encode())


def control_message() -> bytes:
    return gzip.compress(
        json.dumps(
            {
                "messageType": "CONTROL_MESSAGE",
                "owner": "CloudwatchLogs",
                "logGroup": "",
                "logStream": "",
                "subscriptionFilters": [],
                "logEvents": [{"id": "", "timestamp": 0, "message": "CWL CONTROL MESSAGE"}],
            }
        ).encode()
    )


def nyc_records() -> tuple[list[tuple[str, bytes]], int, int]:
    """One CloudWatch Logs payload per day (48 events): records, event count, malformed count."""
    with open(NYC_CSV, newline="") as fh:
        rows = list(csv.DictReader(fh))
    records: list[tuple[str, bytes]] = [("nyc_taxi", control_message())]
    events = bad = 0
    for day, i in enumerate(range(0, len(rows), 48)):
        msgs = [
            json.dumps(
                {"series": "nyc_taxi", "timestamp": r["timestamp"], "value": int(r["value"])}
            )
            for r in rows[i : i + 48]
        ]
        if day in (30, 120):
            msgs.insert(
                10, '{"series": "nyc_taxi", "timestamp": "2014-07-31 05:00:00", "value": '
            )  # truncated
            bad += 1
        if day == 75:
            msgs.insert(5, json.dumps({"series": "nyc_taxi", "timestamp": "?", "value": "n/a"}))
            bad += 1
        t0 = int(
            datetime.fromisoformat(rows[i]["timestamp"]).replace(tzinfo=timezone.utc).timestamp()
            * 1000
        )
        records.append(("nyc_taxi", cwl(msgs, "/taxi/trips", "nyc_taxi", t0, 1_800_000)))
        events += len(msgs)
    records.insert(100, ("nyc_taxi", b"this is not a gzip payload"))
    return records, events + 1, bad + 1


def vpc_records(seed: int = 7) -> tuple[list[tuple[str, bytes]], int, int, dict[str, Any]]:
    """A day of per-minute flow records for three interfaces, 10 minutes per payload."""
    rng = random.Random(seed)
    t0 = 1_735_700_000
    base = {"eni-0web": 220, "eni-0db": 90, "eni-0bastion": 12}
    incidents = {("eni-0db", m) for m in range(900, 905)} | {
        ("eni-0web", m) for m in range(1200, 1203)
    }
    records: list[tuple[str, bytes]] = []
    events = bad = nodata = 0
    series: dict[str, list[tuple[int, int]]] = {e: [] for e in ENIS}
    for eni in ENIS:
        for m0 in range(0, 1440, 10):
            lines = []
            for m in range(m0, m0 + 10):
                packets = max(1, int(rng.gauss(base[eni], base[eni] * 0.1)))
                nbytes = packets * rng.randint(700, 900)
                if (eni, m) in incidents and eni == "eni-0db":
                    nbytes = (
                        packets * 9000 * 40
                    )  # exfiltration: huge transfers, normal packet count
                    packets *= 40
                elif (eni, m) in incidents:
                    packets, nbytes = 9000, 9000 * 60  # burst of many small packets (scan-like)
                start = t0 + m * 60
                lines.append(
                    f"2 123456789012 {eni} 10.0.0.{ENIS.index(eni) + 5} 10.0.9.9 {40000 + m} 443 6 "
                    f"{packets} {nbytes} {start} {start + 60} ACCEPT OK"
                )
                series[eni].append((start, nbytes))
            if eni == "eni-0bastion" and m0 in (300, 700):
                lines.append(
                    f"2 123456789012 {eni} - - - - - - - {t0 + m0 * 60} "
                    f"{t0 + m0 * 60 + 60} - NODATA"
                )
                nodata += 1  # no traffic: skipped, neither scored nor an error
            if eni == "eni-0web" and m0 == 500:
                lines.append("2 123456789012 eni-0web 10.0.0.5 truncated")
                bad += 1
            records.append((eni, cwl(lines, "/vpc/flow-logs", eni, (t0 + m0 * 60) * 1000, 60_000)))
            events += len(lines)
    events -= nodata
    by_key: dict[str, list[bytes]] = {e: [] for e in ENIS}
    for key, data in records:
        by_key[key].append(data)
    # Interleave interfaces round-robin, each in its own time order.
    ordered = [(e, by_key[e][i]) for i in range(len(by_key[ENIS[0]])) for e in ENIS]
    return ordered, events, bad, {"incidents": sorted(incidents), "series": series}


def put_all(kinesis: Any, stream: str, records: list[tuple[str, bytes]], pause: float) -> None:
    for i in range(0, len(records), 50):
        chunk = records[i : i + 50]
        entries = [{"PartitionKey": pk, "Data": data} for pk, data in chunk]
        while entries:
            resp = kinesis.put_records(StreamName=stream, Records=entries)
            entries = [e for e, r in zip(entries, resp["Records"]) if r.get("ErrorCode")]
        time.sleep(pause)


def rcf_fast_command() -> list[str]:
    """The ``rcf-fast`` console script beside this Python, else ``python -m rcf_fast.cli``."""
    script = Path(sys.executable).with_name("rcf-fast")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rcf_fast.cli"]


def run_consumer(
    stream: str,
    args: list[str],
    label: str,
    out: Path,
    endpoint: str | None,
    region: str,
    lines: list[str],
) -> subprocess.Popen:
    cmd = [
        *rcf_fast_command(),
        "consume",
        "--stream",
        stream,
        "--region",
        region,
        "--format",
        "cwl",
        "--from",
        "trim-horizon",
        "--stop-after-idle",
        "6",
        "--poll-interval",
        "0.1",
        "--persist-interval",
        "2",
        "--no-status",
        "--alerts",
        "--state",
        str(out / "state" / f"{label}.state"),
        "--checkpoint",
        str(out / "state" / f"{label}.checkpoints.sqlite"),
        "--output",
        str(out / f"{label}.scores.jsonl"),
        "--errors",
        str(out / f"{label}.errors.jsonl"),
        *args,
    ]
    if endpoint:
        cmd += ["--endpoint-url", endpoint]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=out)

    def pump(pipe: Any, is_err: bool) -> None:
        for line in pipe:
            line = line.rstrip("\n")
            lines.append(line)
            if line.startswith("ALERT"):
                print(f"[{label}] {line}", flush=True)
            elif is_err:
                print(f"[{label}] {line}", file=sys.stderr, flush=True)

    threading.Thread(target=pump, args=(proc.stdout, False), daemon=True).start()
    threading.Thread(target=pump, args=(proc.stderr, True), daemon=True).start()
    return proc


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(float(epoch), timezone.utc).replace(tzinfo=None)


def plot(out: Path, nyc: list[dict[str, Any]], vpc: list[dict[str, Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(13, 9), constrained_layout=True)
    t = [datetime.fromisoformat(r["timestamp"]) for r in nyc]
    v = [r["values"]["value"] for r in nyc]
    s = [r["score"] for r in nyc]
    ax = axes[0]
    for a, b in NAB_WINDOWS:
        ax.axvspan(datetime.fromisoformat(a), datetime.fromisoformat(b), color="orange", alpha=0.2)
    ax.plot(t, v, lw=0.5, color="tab:blue")
    hits = [(ti, vi) for ti, vi, si in zip(t, v, s) if si >= NYC_ALERT]
    if hits:
        ax.scatter(*zip(*hits), color="red", s=12, zorder=3, label=f"alert (score >= {NYC_ALERT})")
        ax.legend(loc="upper left")
    ax.set_title("NYC taxi passengers per half-hour, via Kinesis (orange: NAB labelled windows)")
    axes[1].plot(t, s, lw=0.5, color="tab:purple")
    axes[1].axhline(NYC_ALERT, color="red", ls="--", lw=0.8)
    axes[1].set_title("RCF anomaly score (shingle 8, 100 trees)")
    for ax in axes[:2]:
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    ax = axes[2]
    for eni in ENIS:
        rows = [r for r in vpc if r["key"] == eni]
        ax.plot(
            [utc(r["timestamp"]) for r in rows],
            [r["values"]["bytes"] for r in rows],
            lw=0.6,
            label=eni,
        )
        al = [r for r in rows if r["score"] >= VPC_ALERT]
        if al:
            ax.scatter(
                [utc(r["timestamp"]) for r in al],
                [r["values"]["bytes"] for r in al],
                color="red",
                s=14,
                zorder=3,
            )
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_yscale("log")
    ax.legend(loc="upper left")
    ax.set_title(f"VPC flow bytes per minute per interface (red: score >= {VPC_ALERT})")
    path = out / "kinesis_demo.png"
    fig.savefig(path, dpi=110)
    return path


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--aws", action="store_true", help="use real AWS instead of the embedded moto server"
    )
    p.add_argument(
        "--region",
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    )
    p.add_argument("--out", default=str(ROOT / "out"))
    p.add_argument(
        "--pause", type=float, default=0.05, help="seconds between put batches (replay pacing)"
    )
    args = p.parse_args()
    import boto3

    started = time.monotonic()
    out = Path(args.out)
    shutil.rmtree(out / "state", ignore_errors=True)
    (out / "state").mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.jsonl"):
        old.unlink()
    moto = None
    endpoint: str | None = None
    if not args.aws:
        for k, v in {
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_SESSION_TOKEN": "demo",
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            os.environ[k] = v
        moto, endpoint = start_moto(out / "state" / "moto.log")
        print(f"embedded Kinesis (moto) on {endpoint}")
    kinesis = boto3.client("kinesis", endpoint_url=endpoint, region_name=args.region)
    streams = {"nyc": "rcf-demo-nyc-taxi", "vpc": "rcf-demo-vpc-flow"}
    try:
        for stream in streams.values():
            try:
                kinesis.create_stream(StreamName=stream, ShardCount=2)
            except kinesis.exceptions.ResourceInUseException:
                pass
            kinesis.get_waiter("stream_exists").wait(
                StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
            )
        nyc_recs, nyc_events, nyc_bad = nyc_records()
        vpc_recs, vpc_events, vpc_bad, truth = vpc_records()
        print(
            f"replaying {len(nyc_recs)} CloudWatch Logs records ({nyc_events} log events) "
            "of nyc_taxi and "
            f"{len(vpc_recs)} ({vpc_events} flow lines) of VPC flow logs; "
            f"{nyc_bad + vpc_bad} malformed, 1 CONTROL_MESSAGE"
        )
        lines: dict[str, list[str]] = {"nyc": [], "vpc": []}
        procs = {
            "nyc": run_consumer(
                streams["nyc"],
                [
                    "--key",
                    "series",
                    "--values",
                    "value",
                    "--shingle-size",
                    "8",
                    "--timestamp-field",
                    "timestamp",
                    "--alert-score",
                    str(NYC_ALERT),
                ],
                "nyc",
                out,
                endpoint,
                args.region,
                lines["nyc"],
            ),
            "vpc": run_consumer(
                streams["vpc"],
                [
                    "--message-format",
                    "vpc-flow",
                    "--key",
                    "interface-id",
                    "--timestamp-field",
                    "start",
                    "--alert-score",
                    str(VPC_ALERT),
                ],
                "vpc",
                out,
                endpoint,
                args.region,
                lines["vpc"],
            ),
        }
        producers = [
            threading.Thread(target=put_all, args=(kinesis, streams["nyc"], nyc_recs, args.pause)),
            threading.Thread(target=put_all, args=(kinesis, streams["vpc"], vpc_recs, args.pause)),
        ]
        for th in producers:
            th.start()
        for th in producers:
            th.join()
        for label, proc in procs.items():
            if proc.wait(timeout=110) != 0:
                print("\n".join(lines[label][-20:]), file=sys.stderr)
                raise SystemExit(f"rcf-fast consume ({label}) exited with {proc.returncode}")
    finally:
        if args.aws:
            for stream in streams.values():
                try:
                    kinesis.delete_stream(StreamName=stream)
                except Exception as exc:  # noqa: BLE001 - best effort cleanup
                    print(f"could not delete {stream}: {exc}", file=sys.stderr)
        if moto is not None:
            moto.terminate()
            moto.wait(timeout=10)

    nyc = sorted(read_jsonl(out / "nyc.scores.jsonl"), key=lambda r: r["timestamp"])
    vpc = read_jsonl(out / "vpc.scores.jsonl")
    errors = read_jsonl(out / "nyc.errors.jsonl") + read_jsonl(out / "vpc.errors.jsonl")
    anomalies = [r for r in nyc if r["score"] >= NYC_ALERT] + [
        r for r in vpc if r["score"] >= VPC_ALERT
    ]
    with open(out / "anomalies.jsonl", "w") as fh:
        fh.writelines(json.dumps(r, sort_keys=True) + "\n" for r in anomalies)
    with open(out / "errors.jsonl", "w") as fh:
        fh.writelines(json.dumps(e, sort_keys=True) + "\n" for e in errors)
    png = plot(out, nyc, vpc)

    # Every record is accounted for: scored or in the error sink, exactly once (a record-level
    # error entry counts the failed events of its record; NODATA lines are skipped).
    failed = sum(e.get("failed_events", 1) for e in errors if e.get("kind", "record") == "record")
    ok = len(nyc) + len(vpc) + failed == nyc_events + vpc_events and failed == nyc_bad + vpc_bad
    days = sorted({r["timestamp"][:10] for r in nyc if r["score"] >= NYC_ALERT})
    in_windows = sum(any(a[:10] <= d <= b[:10] for a, b in NAB_WINDOWS) for d in days)
    found = {
        (r["key"], (int(r["timestamp"]) - 1_735_700_000) // 60)
        for r in vpc
        if r["score"] >= VPC_ALERT
    }
    print()
    print(
        f"nyc_taxi: {len(nyc)} scored, alerts on {len(days)} days "
        f"({in_windows} inside NAB's labelled windows): "
        f"{', '.join(days)}"
    )
    print(
        f"vpc-flow: {len(vpc)} scored, {len(found)} alerts; planted incident minutes found: "
        f"{len(found & set(truth['incidents']))}/{len(truth['incidents'])}"
    )
    print(
        f"errors: {len(errors)} ({', '.join(sorted({e['reason'].split(':')[0] for e in errors}))})"
    )
    print(f"counts add up: {ok}")
    print(
        f"wrote {out / 'anomalies.jsonl'} ({len(anomalies)}), "
        f"{out / 'errors.jsonl'} ({len(errors)}), {png}"
    )
    print(f"done in {time.monotonic() - started:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
