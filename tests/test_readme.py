"""The README's promises: its quick start is examples/quickstart.py verbatim and prints what the
README shows, its commands and links exist, and it repeats no other document."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
QUICKSTART = ROOT / "examples" / "quickstart.py"


def blocks(lang: str) -> list[str]:
    """The bodies of the README's fenced code blocks opened with ```lang ("" = no language)."""
    found: list[str] = []
    inside: str | None = None  # the open block's language
    body: list[str] = []
    for line in README.splitlines(keepends=True):
        if line.startswith("```"):
            if inside is None:
                inside, body = line[3:].strip(), []
            else:
                if inside == lang:
                    found.append("".join(body))
                inside = None
        elif inside is not None:
            body.append(line)
    return found


def test_quick_start_is_the_tested_example_verbatim():
    assert QUICKSTART.read_text() in blocks("python")


def test_quick_start_prints_what_the_readme_shows(tmp_path):
    run = subprocess.run(
        [sys.executable, str(QUICKSTART)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    shown = [b for b in blocks("") if b.startswith("t=")]
    assert shown == [run.stdout]


def test_repository_commands_are_there():
    lines = {line.split("#")[0].strip() for block in blocks("") for line in block.splitlines()}
    assert {"make demo", "make test"} <= lines
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test", "bench", "wheel", "wheel-test", "nab"):
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.MULTILINE), target


def test_links_point_to_files():
    links = re.findall(r"\]\(((?!https?://)[^)#]+)", README)
    assert "docs/migrating_from_rrcf.md" in links and "CONTRIBUTING.md" in links
    for link in links:
        assert (ROOT / link).exists(), link


def test_nothing_said_twice():
    """No paragraph of the linked documents is copied into the README."""
    for doc in (
        "docs/migrating_from_rrcf.md",
        "docs/performance.md",
        "docs/api.md",
        "python/rcf_fast/kinesis/README.md",
        "CONTRIBUTING.md",
    ):
        for para in (ROOT / doc).read_text().split("\n\n"):
            if len(para) > 120 and not para.lstrip().startswith(("|", "```", "<!--")):
                assert para.strip() not in README, (doc, para[:80])


def test_benchmark_table_is_filled():
    table = README.split("<!-- bench-table -->")[1].split("<!-- /bench-table -->")[0]
    rows = [line for line in table.strip().splitlines() if line.startswith("|")]
    assert rows[0].startswith("| workload | rcf_fast | krcf | rcf3 | rrcf |")
    assert len(rows) >= 6 and all("/s" in r or "MB" in r for r in rows[2:])


@pytest.mark.slow
def test_score_command_in_the_readme_runs(tmp_path):
    (cmd,) = [
        line
        for block in blocks("")
        for line in block.splitlines()
        if line.startswith("rcf-fast score ")
    ]
    argv, _, out = cmd.partition(">")
    args = [a.replace("data/", str(ROOT / "data") + "/") for a in shlex.split(argv)[2:]]
    code = subprocess.run(
        [sys.executable, "-m", "rcf_fast.cli", "score", *args, "-o", out.strip()],
        cwd=tmp_path,
        timeout=300,
        check=False,
    ).returncode
    assert code == 0
    assert len((tmp_path / out.strip()).read_text().splitlines()) == 10321
    assert (tmp_path / "taxi.png").stat().st_size > 10_000
