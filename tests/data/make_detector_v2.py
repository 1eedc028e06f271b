"""Wrote tests/data/detector_v2.{bin,npz} with the single-scale detector from before the coarse
scales (commit 21a8114): its version-2 state after 400 rows, the results of the whole series
(``full_*``) and of the continuation from that state (``cont_*``). Kept to show how; running it
now would write version-3 bytes and results of the multi-scale defaults."""

import sys
from pathlib import Path

import numpy as np
import rcf_fast

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from test_detector import V2_KWARGS as KWARGS  # the parameters, recorded once


def main() -> None:
    rng = np.random.default_rng(11)
    t = np.arange(700)
    x = np.stack(
        [
            np.sin(t * 0.3) + rng.normal(0, 0.05, t.size),
            np.cos(t * 0.1) * 2 + rng.normal(0, 0.05, t.size),
        ],
        axis=1,
    )
    x[450, 0] += 5.0
    x[600:610, 1] -= 3.0
    full = rcf_fast.AnomalyDetector(**KWARGS).process_many(x)
    b = rcf_fast.AnomalyDetector(**KWARGS)
    b.process_many(x[:400])
    state = b.to_bytes()
    cont = b.process_many(x[400:])
    (HERE / "detector_v2.bin").write_bytes(state)
    arrays = {"full_" + k: v for k, v in full.items()} | {"cont_" + k: v for k, v in cont.items()}
    np.savez_compressed(HERE / "detector_v2.npz", x=x, **arrays)


if __name__ == "__main__":
    main()
