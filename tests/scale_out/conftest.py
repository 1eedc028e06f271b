"""The ministack emulator (Kinesis + DynamoDB on 127.0.0.1), started once for every KCL
scale-out test of the session, with Kinesis's reshard semantics (ministack_reshard.py)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .kcl_harness import AWS_ENV, free_port


@pytest.fixture(scope="session")
def ministack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from kinesis.kcl_env import ensure_ministack

    exe = ensure_ministack()
    port = free_port()
    workdir = tmp_path_factory.mktemp("ministack")
    env = {**os.environ, **AWS_ENV, "BIND_HOST": "127.0.0.1", "GATEWAY_PORT": str(port)}
    env["TMPDIR"] = str(workdir)
    old = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    log = open(workdir / "ministack.log", "wb")  # noqa: SIM115
    launcher = Path(__file__).with_name("ministack_reshard.py")
    proc = subprocess.Popen(
        [str(exe.with_name("python")), str(launcher)],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import boto3

        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ministack exited; see {workdir / 'ministack.log'}")
            try:
                boto3.client("kinesis", endpoint_url=url, region_name="us-east-1").list_streams()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
