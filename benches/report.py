"""Turn a pytest-benchmark JSON file (written by `make bench`) into the benchmark report.

    python benches/report.py out/bench.json [--md docs/benchmarks.md] [--png docs/benchmarks.png]
        [--readme README.md]

Writes the table (points/s, ratio to krcf from the same run, resident memory) with the machine
and the library versions to ``--md``, a chart of the same figures to ``--png``, and replaces the
table between the ``<!-- bench-table -->`` markers of ``--readme`` so the README never drifts.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

LIBS = ("rcf_fast", "krcf", "rcf3", "rrcf")
# (workload, benchmark group, {column: library label in that group}); krcf's ratio base is the
# group's plain "krcf" entry.
ROWS: list[tuple[str, str, dict[str, str]]] = [
    (
        "1-d series, shingle 4, one `score_update` per point",
        "stream 1-d shingle 4",
        {"rcf_fast": "rcf_fast", "krcf": "krcf", "rcf3": "rcf3", "rrcf": "rrcf"},
    ),
    (
        "same, `threads=1` (krcf: its parallel mode)",
        "stream 1-d shingle 4",
        {"rcf_fast": "rcf_fast (threads=1)", "krcf": "krcf (parallel)"},
    ),
    (
        "same series, `score_update_many` on one batch (krcf: no batch call, its loop)",
        "batch 1-d shingle 4",
        {"rcf_fast": "rcf_fast score_update_many", "krcf": "krcf"},
    ),
    (
        "16-d points, one call per point",
        "16-d points",
        {"rcf_fast": "rcf_fast stream", "krcf": "krcf", "rcf3": "rcf3"},
    ),
    ("16-d points, `score_update_many`", "16-d points", {"rcf_fast": "rcf_fast batch"}),
]
MARK_BEGIN, MARK_END = "<!-- bench-table -->", "<!-- /bench-table -->"


def load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    rates: dict[str, dict[str, float]] = {}
    memory: dict[str, float] = {}
    times: dict[str, float] = {}
    overhead: dict[str, float] = {}
    for b in data["benchmarks"]:
        info, median = b["extra_info"], b["stats"]["median"]
        if "rcf_fast_mb" in info:
            memory = {lib: info[f"{lib}_mb"] for lib in LIBS if f"{lib}_mb" in info}
        elif (b["group"] or "").startswith("call overhead"):
            overhead[info["library"].replace("rcf_fast ", "")] = median
        elif "points" in info:
            rates.setdefault(b["group"], {})[info["library"]] = info["points"] / median
        else:
            times[b["name"]] = median
    return {
        "rates": rates,
        "memory": memory,
        "times": times,
        "overhead": overhead,
        "machine": data["machine_info"],
        "commit": data.get("commit_info", {}),
        "datetime": data.get("datetime", ""),
    }


def table(r: dict[str, Any]) -> str:
    lines = ["| workload | " + " | ".join(LIBS) + " |", "|---" * (len(LIBS) + 1) + "|"]
    for label, group, cols in ROWS:
        got = r["rates"].get(group, {})
        base = got.get("krcf")
        cells = []
        for lib in LIBS:
            v = got.get(cols.get(lib, ""))
            if v is None:
                cells.append("")
            elif lib == "rcf_fast" and base:
                cells.append(f"{v:,.0f} /s ({v / base:.1f}×)")
            else:
                cells.append(f"{v:,.0f} /s")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    mem = r["memory"]
    if mem:
        cells = [f"{mem[lib]:.2f} MB" if lib in mem else "" for lib in LIBS]
        lines.append(
            "| resident memory of a full standard forest of 4-d points | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def caption(r: dict[str, Any]) -> str:
    """One line under the README's table: when, where, and how busy the machine was."""
    m = r["machine"]
    load = m.get("load_average")
    busy = (
        f"; load average {load[0]:.1f} when it started (on a busy machine the default `threads` "
        "falls back to the calling thread, as fast as `threads=1`)"
        if load
        else ""
    )
    return (
        f"Run of {r['datetime'][:10]} on {m.get('cpu', {}).get('count', '?')} cores, "
        f"CPython {m.get('python_version')}{busy}."
    )


def versions(machine: dict[str, Any]) -> str:
    v = machine.get("library_versions", {})
    return ", ".join(f"{k} {v[k]}" for k in sorted(v)) or "not recorded"


def markdown(r: dict[str, Any], png: str) -> str:
    m = r["machine"]
    cpu = m.get("cpu", {})
    t = r["times"]
    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`benches/report.py` from the pytest-benchmark JSON); do not edit.",
        "Points per second are the median of 5 rounds of 2,000 points (8,000 for the batch row)",
        "after 2,000 points of warm-up, 100 trees of 256 samples; the ratio is to `krcf` in the same",
        "run. The machine is shared and noisy: compare ratios within one run, not across runs.",
        "",
        table(r),
        "",
        f"![points per second and memory]({png})",
        "",
        "## rrcf's README programs: `rcf_fast.rrcf` against rrcf",
        "",
        "| program | rcf_fast.rrcf | rrcf | speed-up |",
        "|---|---|---|---|",
    ]
    for label, ours, theirs in (
        (
            "streaming loop (40 trees, shingle 4, tree size 256)",
            "test_streaming_rcf_fast",
            "test_streaming_rrcf",
        ),
        ("`RCTree(X)`, 256 points of 3-d", "test_batch_rcf_fast", "test_batch_rrcf"),
    ):
        if ours in t and theirs in t:
            out.append(
                f"| {label} | {_secs(t[ours])} | {_secs(t[theirs])} | {t[theirs] / t[ours]:,.0f}× |"
            )
    if r["overhead"]:
        out += [
            "",
            "## Per-call overhead",
            "",
            "`score_update` of one point on a forest of one tree of 16 points (median; mostly the",
            "crossing between Python and Rust): "
            + ", ".join(f"{k} {v * 1e9:,.0f} ns" for k, v in r["overhead"].items())
            + ".",
        ]
    commit = r["commit"]
    cpu_name = cpu.get("brand_raw") or m.get("processor") or m.get("machine")
    load = ", ".join(f"{x:.1f}" for x in m.get("load_average", []))
    commit_id = str(commit.get("id", "?"))[:10]
    dirty = " (with uncommitted changes)" if commit.get("dirty") else ""
    out += [
        "",
        "## Machine",
        "",
        f"- {cpu_name}, {cpu.get('count', '?')} cores, {m.get('system')} {m.get('release')}",
        f"- {m.get('python_implementation')} {m.get('python_version')}; {versions(m)}",
        f"- load average (1, 5, 15 min) when the run started: {load or 'not recorded'}",
        f"- run {r['datetime'][:19].replace('T', ' ')} UTC at commit {commit_id}{dirty}",
        "",
    ]
    return "\n".join(out)


def _secs(s: float) -> str:
    return f"{s:.3g} s" if s >= 0.1 else f"{s * 1e3:.3g} ms" if s >= 1e-4 else f"{s * 1e6:.3g} µs"


def chart(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    colors = {"rcf_fast": "#d62728", "krcf": "#1f77b4", "rcf3": "#2ca02c", "rrcf": "#7f7f7f"}
    fig, (ax, axm) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [4, 1]})
    labels = [re.sub(r"`", "", label) for label, _, _ in ROWS]
    x = np.arange(len(ROWS))
    width = 0.2
    for k, lib in enumerate(LIBS):
        vals = [r["rates"].get(g, {}).get(cols.get(lib, ""), np.nan) for _, g, cols in ROWS]
        ax.bar(x + (k - 1.5) * width, vals, width, label=lib, color=colors[lib])
    ax.set_yscale("log")
    ax.set_ylim(top=ax.get_ylim()[1] * 10)  # room for the legend above the bars
    ax.set_ylabel("points per second (log)")
    ax.set_xticks(x)
    ax.set_xticklabels([_wrap(s, 24) for s in labels], fontsize=8)
    ax.legend(ncol=4, fontsize=8)
    ax.set_title("throughput, same run (higher is better)")
    mem = r["memory"]
    libs = [lib for lib in LIBS if lib in mem]
    axm.bar(libs, [mem[lib] for lib in libs], color=[colors[lib] for lib in libs])
    axm.set_ylabel("MB")
    axm.set_title("memory of a full 4-d forest\n(lower is better)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _wrap(s: str, width: int) -> str:
    words, lines, cur = s.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return "\n".join([*lines, cur])


def update_readme(path: Path, tbl: str) -> None:
    text = path.read_text()
    start, end = text.find(MARK_BEGIN), text.find(MARK_END)
    if start < 0 or end < start:
        raise SystemExit(f"{path}: no {MARK_BEGIN} ... {MARK_END} markers for the table")
    path.write_text(text[: start + len(MARK_BEGIN)] + "\n" + tbl + "\n" + text[end:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", type=Path)
    p.add_argument("--md", type=Path, default=Path("docs/benchmarks.md"))
    p.add_argument("--png", type=Path, default=Path("docs/benchmarks.png"))
    p.add_argument("--readme", type=Path)
    a = p.parse_args()
    r = load(a.json)
    a.md.write_text(markdown(r, a.png.name))
    chart(r, a.png)
    if a.readme:
        update_readme(a.readme, table(r) + "\n\n" + caption(r))
    print(f"wrote {a.md} and {a.png}" + (f", table in {a.readme}" if a.readme else ""))


if __name__ == "__main__":
    main()
