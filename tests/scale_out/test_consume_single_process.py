"""``rcf-fast consume`` is the single-process consumer: its hand-made multi-process ownership
(``--max-shards``) was retired. Measured before retiring it (two consumers, one SIGKILLed
mid-stream): with each capped to its share of the shards, the dead one's shard was never read
again; with the cap above the shard count, the survivor took the shard over but with its own
state, so those keys' forests started again (docs/scale_out.md). The flag is refused with what to
use instead."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest
from kinesis.fakes import FakeShardSource
from rcf_fast.cli import main
from rcf_fast.kinesis import (
    ConfigError,
    Consumer,
    MemorySink,
    MemoryStateStore,
    ScoringStep,
    SQLiteCheckpointStore,
    make_decoder,
)

WHAT_TO_USE = r"single-process.*KCL.*Flink.*docs/scale_out\.md"


def test_consumer_refuses_max_shards(tmp_path: Path) -> None:
    step = ScoringStep(
        make_decoder("json"),
        {"num_trees": 5, "sample_size": 8, "seed": 1},
        key_field="k",
        value_fields=["v"],
        results=MemorySink(),
    )
    with pytest.raises(ConfigError, match=WHAT_TO_USE):
        Consumer(
            FakeShardSource(2, random.Random(0)),
            step,
            SQLiteCheckpointStore(str(tmp_path / "cp.db"), "s"),
            MemoryStateStore(),
            max_shards=1,
        )


@pytest.mark.parametrize("value", ["1", "0", "-3"])
def test_cli_refuses_max_shards_before_touching_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    rc = main(["consume", "--stream", "s", "--region", "us-east-1", "--max-shards", value])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--max-shards" in err
    assert re.search(WHAT_TO_USE, err), err
    assert os.listdir(tmp_path) == []  # no state, checkpoint or output file was made


def test_consume_help_says_single_process_and_where_to_scale_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["consume", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert re.search(r"single-\s*process consumer", out), out  # argparse may wrap at the hyphen
    assert "python -m rcf_fast.kinesis.kcl" in out and "rcf_fast.flink" in out
    assert "--max-shards" not in out
