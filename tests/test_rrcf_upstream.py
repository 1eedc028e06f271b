"""rrcf's own test suite (``test/test_rrcf.py`` of the rrcf 0.4.4 sdist on PyPI), unchanged, run
against ``rcf_fast.rrcf``.

The sdist is fetched by ``make venv`` (``pip download`` into ``.venv/sdists``); if it is not
there the test downloads it the same way. Its test file is checked against a pinned SHA-256, so it
is exactly rrcf's. A conftest in the run directory puts ``rcf_fast.rrcf`` in ``sys.modules`` as
``rrcf`` and pytest runs the file in a subprocess.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDIST_DIR = ROOT / ".venv" / "sdists"
SDIST = SDIST_DIR / "rrcf-0.4.4.tar.gz"
MEMBER = "rrcf-0.4.4/test/test_rrcf.py"
TEST_SHA256 = "fd3eea9e383dfa0ab266e815a12e586e0a0b3046fe490ae57a6c951c672bad9f"

CONFTEST = """\
import sys
import rcf_fast.rrcf
sys.modules["rrcf"] = rcf_fast.rrcf
"""


def upstream_test_source() -> bytes:
    if not SDIST.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "rrcf==0.4.4",
                "-d",
                str(SDIST_DIR),
            ],
            check=True,
            timeout=300,
        )
    with tarfile.open(SDIST) as tar:
        member = tar.extractfile(MEMBER)
        assert member is not None, f"{MEMBER} missing from {SDIST}"
        source = member.read()
    assert hashlib.sha256(source).hexdigest() == TEST_SHA256, "not rrcf 0.4.4's test file"
    return source


def test_rrcf_own_suite_passes_against_rcf_fast(tmp_path):
    (tmp_path / "test_rrcf.py").write_bytes(upstream_test_source())
    (tmp_path / "conftest.py").write_text(CONFTEST)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-o",
            "addopts=",
            "test_rrcf.py",
        ],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "15 passed" in proc.stdout and "failed" not in proc.stdout, proc.stdout[-2000:]
    # The conftest really replaced rrcf (the oracle is installed too): the trees are ours.
    check = subprocess.run(
        [sys.executable, "-c", CONFTEST + "import rrcf; print(type(rrcf.RCTree()).__mro__[1])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "rcf_fast._rcf.RrcfTree" in check.stdout
