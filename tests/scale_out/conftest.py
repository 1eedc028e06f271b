"""The ministack emulator (Kinesis + DynamoDB on 127.0.0.1), started once for every KCL
scale-out test of the session, with Kinesis's reshard semantics (ministack_reshard.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kinesis.kcl_env import ensure_ministack
from kinesis.servers import aws_environment
from kinesis.servers import ministack as run_ministack


@pytest.fixture(scope="session")
def ministack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    python = ensure_ministack().with_name("python")
    launcher = Path(__file__).with_name("ministack_reshard.py")
    workdir = tmp_path_factory.mktemp("ministack")
    with aws_environment(), run_ministack([str(python), str(launcher)], workdir) as url:
        yield url
