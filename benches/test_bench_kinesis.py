"""The Kinesis layer under hostile records (``make bench-kinesis``).

* peak RSS per hostile record class: each class is decoded and scored by a ``ScoringStep`` in
  its own subprocess (``ru_maxrss`` of that process, and its growth over the process before
  the record), with the default limits;
* error bytes per input byte: the JSON-lines size of the error entries a record produced,
  divided by the record's size;
* good records/s through ``ScoringStep.process`` (real forests, JSON records) with 1% hostile
  records mixed in, beside the same batch without them.

The hostile builders are the tests' (``tests/kinesis/hostile.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from kinesis.hostile import HOSTILE, big_int_json, deep_json

FORMAT_OF = {
    "gzip_bomb": "cwl",
    "cwl_many_events": "cwl",
    "cwl_malformed": "cwl",
    "cwl_vpc_as_json": "cwl",
    "kpl_bad": "kpl",
}

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from rcf_fast.kinesis import MemorySink, RawRecord, ScoringStep, make_decoder
    path, fmt = sys.argv[1], sys.argv[2]
    data = open(path, "rb").read()
    errors = MemorySink()
    step = ScoringStep(make_decoder(fmt), {"num_trees": 50, "sample_size": 64},
                       key_field="svc", value_fields=["latency"], errors=errors)
    step.process([RawRecord("shardId-0", "1", b'{"svc": "api", "latency": 1}')])
    errors.buffer.clear()  # the warm-up record is not JSON for cwl/kpl: not part of the figures
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stats = step.process([RawRecord("shardId-0", "2", data)])
    step.flush()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    err = sum(len(json.dumps(e, sort_keys=True)) + 1 for e in errors.items)
    print(json.dumps({"before_kb": before, "peak_kb": peak, "error_bytes": err,
                      "entries": len(errors.items), "errors": stats.errors,
                      "reason": errors.items[0]["reason"][:90] if errors.items else ""}))
    """
)


def measure(name: str, tmp: Path) -> dict:
    data = HOSTILE[name]()
    path = tmp / f"{name}.bin"
    path.write_bytes(data)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), FORMAT_OF.get(name, "json")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    row = json.loads(out.strip().splitlines()[-1])
    row["bytes"] = len(data)
    return row


@pytest.mark.benchmark
def test_hostile_records_memory_and_error_bytes(benchmark, tmp_path):
    rows = {name: measure(name, tmp_path) for name in HOSTILE}
    benchmark.pedantic(lambda: None, rounds=1)
    print(
        "\nclass                record bytes  peak RSS MiB  growth MiB  error bytes/input byte"
        "  entries  reason"
    )
    for name, r in rows.items():
        ratio = r["error_bytes"] / r["bytes"]
        growth = (r["peak_kb"] - r["before_kb"]) / 1024
        print(
            f"{name:20s} {r['bytes']:>12,d}  {r['peak_kb'] / 1024:>12.0f}  {growth:>10.0f}  "
            f"{ratio:>22.2f}  {r['entries']:>7d}  {r['reason']}"
        )
        benchmark.extra_info[name] = {
            "bytes": r["bytes"],
            "peak_rss_mib": r["peak_kb"] / 1024,
            "growth_mib": growth,
            "error_bytes_per_input_byte": ratio,
        }
        assert r["peak_kb"] < 400 * 1024, name
        assert r["error_bytes"] <= 3 * r["bytes"] + 64 * 1024, name
        assert r["errors"] >= 1, name


def batch(n: int, hostile_every: int | None) -> list:
    from rcf_fast.kinesis import RawRecord

    hostile = [deep_json(20_000), big_int_json(), b"{broken", b"\xff\xfe"]
    out = []
    for i in range(n):
        if hostile_every and i % hostile_every == hostile_every - 1:
            data = hostile[(i // hostile_every) % len(hostile)]
        else:
            data = json.dumps({"svc": f"s{i % 4}", "i": i, "latency": 100 + i % 13}).encode()
        out.append(RawRecord("shardId-0", str(10_000 + i), data))
    return out


def make_step():
    from rcf_fast.kinesis import ScoringStep, make_decoder

    return ScoringStep(
        make_decoder("json"),
        {"num_trees": 50, "sample_size": 256, "seed": 1, "threads": 1},
        key_field="svc",
        value_fields=["latency"],
    )


@pytest.mark.benchmark
@pytest.mark.parametrize("mix", ["clean", "1pct_hostile"])
def test_good_records_per_second(benchmark, mix):
    records = batch(2000, None if mix == "clean" else 100)
    good = sum(1 for r in records if r.data.startswith(b'{"svc": "s'))

    def run():
        step = make_step()
        stats = step.process(records)
        return stats

    stats = benchmark.pedantic(run, rounds=5, iterations=1)
    assert stats.scored == good and stats.errors == len(records) - good
    rate = good / benchmark.stats.stats.min
    benchmark.extra_info["good_records_per_s"] = rate
    print(
        f"\n{mix}: {good} good of {len(records)} records, {rate:,.0f} good records/s (best round)"
    )
