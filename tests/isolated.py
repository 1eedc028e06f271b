"""Runs a snippet in a fresh interpreter under a memory cap and a time limit, so that a crash,
an abort or a runaway allocation shows as a test failure instead of killing the test runner."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

TESTS = os.path.dirname(os.path.abspath(__file__))


def _cap(mem_bytes: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))

    return apply


def run(code: str, mem_gb: float = 1.5, timeout: float = 120) -> subprocess.CompletedProcess:
    """`code` run by this interpreter with address space capped at `mem_gb` GB; the tests folder
    is on sys.path. The caller asserts on returncode / stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = TESTS + os.pathsep + env.get("PYTHONPATH", "")
    # Fewer threads keep the virtual memory of the interpreter itself small under the cap.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_cap(int(mem_gb * 2**30)),
        env=env,
    )


def expect_ok(code: str, mem_gb: float = 1.5, timeout: float = 120) -> str:
    """Runs `code` isolated; fails with its output unless it exits 0. Returns its stdout."""
    p = run(code, mem_gb, timeout)
    assert p.returncode == 0, (
        f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr[-3000:]}"
    )
    return p.stdout
