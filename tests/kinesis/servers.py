"""Local AWS emulators for the tests: the credentials they take, a free port, and ministack (an
HTTP/2 Kinesis + DynamoDB emulator) started, awaited and stopped. Shared by the Kinesis tests'
fixtures (conftest.py, the KCL test) and the scale-out tests."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not answer {url} within {timeout}s")


@contextmanager
def aws_environment() -> Iterator[None]:
    """``AWS_ENV`` in ``os.environ`` for the block, the previous values restored after it."""
    old = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Terminates a server, killing it if it has not exited within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def ministack(command: list[str], workdir: Path) -> Iterator[str]:
    """Runs ``command`` (ministack, or a launcher of it) on 127.0.0.1 and a free port, in
    ``workdir`` (its log: ``workdir/ministack.log``), until Kinesis answers; yields its URL and
    stops it after the block."""
    import boto3

    port = free_port()
    env = {
        **os.environ,
        **AWS_ENV,
        "BIND_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "TMPDIR": str(workdir),
    }
    log = open(workdir / "ministack.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"ministack exited with {proc.returncode}; see {workdir / 'ministack.log'}"
                )
            try:
                boto3.client("kinesis", endpoint_url=url, region_name="us-east-1").list_streams()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        stop_server(proc)
        log.close()


def ministack_stream(url: str, prefix: str, shards: int, tmp_path: Path) -> tuple[Any, str, str]:
    """A new stream of ``shards`` shards on the emulator at ``url``, named after ``prefix`` and
    the test's ``tmp_path``, once it exists: a Kinesis client, the stream name and a fresh KCL
    application name."""
    import boto3

    kinesis = boto3.client("kinesis", endpoint_url=url, region_name="us-east-1")
    stream = f"{prefix}-{tmp_path.name[-12:]}".replace("_", "-")
    app = f"rcf-{prefix}-{int(time.time())}"
    kinesis.create_stream(StreamName=stream, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    return kinesis, stream, app
