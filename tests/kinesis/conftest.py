"""Fixtures: moto's server on 127.0.0.1 (random free port) started as a subprocess for the
session, boto3 clients pointed at it, and unique resource names per test."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from .servers import aws_environment, free_port, stop_server, wait_http


@pytest.fixture(scope="session")
def aws_env() -> Iterator[None]:
    with aws_environment():
        yield


@pytest.fixture(scope="session")
def moto_endpoint(aws_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a moto server started for this session on 127.0.0.1 and a random free port."""
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [*cmd, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/moto-api/", proc)
        yield url
    finally:
        stop_server(proc)
        log.close()


@pytest.fixture
def client(moto_endpoint: str) -> Callable[[str], Any]:
    """``client("kinesis")``: a boto3 client for the moto server."""
    import boto3

    def make(service: str) -> Any:
        return boto3.client(service, endpoint_url=moto_endpoint, region_name="us-east-1")

    return make


@pytest.fixture
def name() -> str:
    """A unique resource name for this test."""
    return f"t-{uuid.uuid4().hex[:10]}"


def create_stream(kinesis: Any, stream: str, shards: int) -> None:
    kinesis.create_stream(StreamName=stream, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
