import numpy as np
import rcf_fast

# A noisy periodic signal with one spike at t=1500.
rng = np.random.default_rng(0)
stream = np.sin(np.arange(3000) * 2 * np.pi / 100) + rng.normal(0, 0.05, 3000)
stream[1500] += 3.0

forest = rcf_fast.RandomCutForest(dimensions=1, shingle_size=4, seed=42)
for t, value in enumerate(stream):
    score = forest.score_update(value)  # score against what was learned, then learn it
    if score > 2.5:
        print(f"t={t} value={value:.2f} score={score:.2f}")

# Score without learning, and ask why (per input dimension: above or below the expected).
a = forest.attribution(5.0)
print(f"5.0 scores {a.total:.2f}: high {a.high[0]:.2f}, low {a.low[0]:.2f}")

# A whole batch at once (GIL released; same scores as row by row), then save and restore.
scores = forest.score_update_many(stream[:1000])
restored = rcf_fast.RandomCutForest.from_bytes(forest.to_bytes())  # or pickle
assert restored.score(0.0) == forest.score(0.0)
