"""Slow-tier helpers for the KCL test: ministack (an HTTP/2 Kinesis + DynamoDB emulator) in its
own virtual environment, created on first use from PyPI, and the KCL MultiLangDaemon command."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

MINISTACK_REQUIREMENTS = [
    "ministack==1.5.33",
    "cbor2",
]  # cbor2: the Java SDK speaks CBOR to Kinesis


def ministack_venv() -> Path:
    """``<venv>/ministack-venv`` (inside the test venv, so ``make clean`` removes it)."""
    return Path(sys.prefix) / "ministack-venv"


def ensure_ministack() -> Path:
    """Return the ``ministack`` executable, creating its venv and installing it if missing."""
    venv = ministack_venv()
    exe = venv / "bin" / "ministack"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import ministack, cbor2"], check=False, capture_output=True
    )
    if probe.returncode != 0 or not exe.exists():
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *MINISTACK_REQUIREMENTS],
            check=True,
            timeout=900,
        )
    return exe


def kcl_classpath(extra: list[str]) -> str:
    import amazon_kclpy

    jars = sorted(glob.glob(os.path.join(os.path.dirname(amazon_kclpy.__file__), "jars", "*.jar")))
    if not jars:
        raise RuntimeError("kclpy-ext is installed without its KCL jars")
    return os.pathsep.join(jars + extra)


def java() -> str:
    exe = shutil.which("java")
    if exe is None:
        raise RuntimeError(
            "the KCL test needs Java 17+ on PATH (apt-get install openjdk-17-jre-headless)"
        )
    return exe
