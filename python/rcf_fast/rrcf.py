"""Drop-in replacement for the ``rrcf`` package: ``import rcf_fast.rrcf as rrcf``.

The trees are ``rcf_fast._rcf.RrcfTree`` (Rust); this module only adds rrcf's constructor
signature, ``random_state`` handling, pickling, ``map_leaves``/``map_branches``, printing and
``shingle``.

Two behaviours:

* default (``compat=None``): rrcf's master branch, with its bugs fixed (float64 boxes for
  integer input, ``ValueError`` for NaN/infinite values and wrong dimensions, ``KeyError`` for
  unknown or repeated indices, any seed type, pickling with or without a seed, no recursion).
* ``compat="0.4.4"``: bit for bit what ``rrcf==0.4.4`` computes for the same ``random_state``,
  batch, and insert/forget sequence, including its draws from a shared ``RandomState`` or from
  numpy's global generator when ``random_state`` is not an ``int``.
"""

from __future__ import annotations

import operator
import secrets
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable

import numpy as np

from rcf_fast import _rcf
from rcf_fast._rcf import Branch, DimensionError, DuplicateIndexError, Leaf, RrcfLeaves

__all__ = [
    "Branch",
    "DimensionError",
    "DuplicateIndexError",
    "Leaf",
    "RCTree",
    "shingle",
]

__version__ = _rcf.__version__

Mapping.register(RrcfLeaves)

_COMPAT_VALUES = (None, "0.4.4")
_U32 = 2**32


def _words(value: int) -> list[int]:
    """Little-endian 32-bit words of a non-negative int (at least one)."""
    out = []
    while True:
        out.append(value & 0xFFFFFFFF)
        value >>= 32
        if not value:
            return out


def _seed_args(random_state: Any, compat: bool) -> dict[str, Any]:
    """Turns rrcf's ``random_state`` into the Rust constructor's seed arguments."""
    if compat:
        # rrcf 0.4.4: an int seeds a private RandomState, a RandomState is shared, and anything
        # else (None, numpy integers, Generators) means numpy's global generator.
        if isinstance(random_state, int):
            if not 0 <= random_state < _U32:
                raise ValueError(
                    f"random_state={random_state!r}: an int seed must be between 0 and 2**32 - 1"
                )
            return {"seed": int(random_state)}
        if isinstance(random_state, np.random.RandomState):
            return {"shared": random_state}
        return {"shared": np.random.mtrand._rand}
    if random_state is None:
        return {"seed_key": _words(secrets.randbits(128))}
    if isinstance(random_state, np.random.RandomState):
        # As in rrcf: a RandomState is the tree's stream (shared, not a source of a seed), so
        # RCTree(random_state=0) and RCTree(random_state=RandomState(0)) build the same tree.
        return {"shared": random_state}
    if isinstance(random_state, np.random.Generator):
        return {"seed_key": [int(v) for v in random_state.integers(0, _U32, size=4)]}
    if isinstance(random_state, np.random.BitGenerator):
        gen = np.random.Generator(random_state)
        return {"seed_key": [int(v) for v in gen.integers(0, _U32, size=4)]}
    if isinstance(random_state, np.random.SeedSequence):
        return {"seed_key": [int(v) for v in random_state.generate_state(4)]}
    try:
        value = operator.index(random_state)
    except TypeError:
        raise TypeError(
            "random_state must be None, an int (or numpy integer), a numpy RandomState, "
            f"Generator, BitGenerator or SeedSequence; got {type(random_state).__name__}"
        ) from None
    if value < 0:
        raise ValueError(f"random_state={value}: an int seed must be non-negative")
    if value < _U32:
        # Same stream as numpy.random.RandomState(value), so seeds mean what they meant in rrcf.
        return {"seed": value}
    return {"seed_key": _words(value)}


def _as_data(X: Any) -> tuple[np.ndarray, bool]:
    """X as a float64 (n, d) array, and whether it was an integer array."""
    expected = "X must be an (n, d) array of numbers (int or float)"
    try:
        raw = np.asarray(X)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{expected} ({e})") from e
    if raw.dtype.kind not in "biuf":
        # None, strings and ragged rows would become NaN or fail later.
        raise TypeError(f"{expected}; got an array of dtype {raw.dtype}")
    data = np.asarray(raw, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"X must be a 2-D (n, d) array; got an array of shape {data.shape}")
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(f"X has shape {data.shape}; expected at least one row and one column")
    # NaN and infinity are rejected in Rust, with the row and column.
    return data, raw.dtype.kind in "iu"


def _noop(x: Any) -> None:
    return None


def _restore(cls: type[RCTree], state: tuple, attrs: dict) -> RCTree:
    obj = cls.__new__(cls)
    if state[2] is None:  # compat tree drawing from numpy's global generator
        state = state[:2] + (np.random.mtrand._rand,) + state[3:]
    obj._setstate(state)
    obj.__dict__.update(attrs)
    return obj


class RCTree(_rcf.RrcfTree):
    """Robust random cut tree with rrcf's API (Guha et al., ICML 2016).

    Parameters
    ----------
    X : array-like (n, d), optional
        Points to build the tree from (batch construction). Without ``X`` the tree is empty.
    index_labels : sequence of length n, optional
        Indices of the rows of ``X`` (default ``np.arange(n)``).
    precision : int, default 9
        ``X`` is rounded to this many decimals before duplicates are merged (as rrcf does).
    random_state : None, int, numpy integer, RandomState, Generator, BitGenerator, SeedSequence
        Seed of the tree's generator. An int ``s`` gives the stream of ``RandomState(s)``.
    compat : None or "0.4.4"
        ``"0.4.4"`` reproduces rrcf 0.4.4 bit for bit (see the module docstring).
    """

    index_labels: Any

    def __new__(  # noqa: PYI034
        cls,
        X: Any = None,
        index_labels: Any = None,
        precision: int = 9,
        random_state: Any = None,
        compat: str | None = None,
    ) -> RCTree:
        if compat not in _COMPAT_VALUES:
            raise ValueError(f"compat={compat!r}; expected None (rrcf master) or '0.4.4'")
        is_compat = compat == "0.4.4"
        kwargs = _seed_args(random_state, is_compat)
        try:
            kwargs["precision"] = operator.index(precision)
        except TypeError:
            raise TypeError(f"precision must be an int, got {precision!r}") from None
        if not -(2**31) <= kwargs["precision"] < 2**31:
            raise ValueError(
                f"precision={kwargs['precision']} is out of range; expected an int between "
                "-2**31 and 2**31 - 1 (decimals to round X to, rrcf's default is 9)"
            )
        if X is not None:
            data, int_data = _as_data(X)
            kwargs["data"] = data
            if int_data and kwargs["precision"] >= 0:
                # np.around leaves integers alone; rounding their float64 copies might not.
                # (rrcf 0.4.4 cannot batch-build integer X at all; we build it as float64.)
                kwargs["precision"] = None
            if index_labels is None:
                # Keys 0..n-1 are made in Rust as ints (rrcf's are numpy.int64; equal and same hash).
                index_labels = np.arange(data.shape[0], dtype=int)
            else:
                kwargs["labels"] = list(index_labels)
        self = super().__new__(cls, compat=is_compat, **kwargs)
        self.index_labels = index_labels
        return self

    @classmethod
    def _empty(cls, compat: str | None = None, random_state: Any = None) -> RCTree:
        return cls(random_state=random_state, compat=compat)

    def map_leaves(self, node: Any, op: Callable = _noop, *args: Any, **kwargs: Any) -> None:
        """Calls ``op(leaf, *args, **kwargs)`` on each leaf below ``node``, left to right.

        As in rrcf, ``node`` may belong to another tree, and anything that is not a Branch
        (a Leaf, or None) is passed to ``op`` itself.
        """
        if not isinstance(node, (Branch, Leaf)):
            op(node, *args, **kwargs)
            return
        for leaf in self._leaves_under(node):
            op(leaf, *args, **kwargs)

    def map_branches(self, node: Any, op: Callable = _noop, *args: Any, **kwargs: Any) -> None:
        """Calls ``op(branch, *args, **kwargs)`` on each branch below ``node`` in post-order."""
        if not isinstance(node, Branch):
            return
        for branch in self._branches_under(node):
            op(branch, *args, **kwargs)

    # ---- rrcf 0.4.4's helpers -------------------------------------------------------------

    def _get_nodes(self, x: Any, stack: list) -> None:
        """Appends ``x`` to ``stack`` (rrcf's op for collecting nodes with map_leaves/branches)."""
        stack.append(x)

    def _accumulate(self, x: Any, accumulator: np.ndarray) -> None:
        """Adds ``x.n`` to the 0-d array ``accumulator`` in place."""
        accumulator += x.n

    def _get_bbox(self, x: Any, mins: np.ndarray, maxes: np.ndarray) -> None:
        """Widens ``mins``/``maxes`` in place to the point of leaf ``x``."""
        point = x.x
        lt = point < mins
        gt = point > maxes
        mins[lt] = point[lt]
        maxes[gt] = point[gt]

    def _increment_depth(self, x: Any, inc: int = 1) -> None:
        """rrcf keeps a depth per leaf and shifts it after restructuring; here ``leaf.d`` is
        computed from the structure on each access, so it is always current and nothing is
        stored to shift."""
        return

    def _query(self, point: Any, node: Any) -> Any:
        """The leaf reached from ``node`` by following the cuts for ``point``."""
        return self.query(point, node)

    def _lr_branch_bbox(self, node: Any) -> np.ndarray:
        """The box of a branch computed from its children's boxes."""
        return np.vstack(
            [
                np.minimum(node.l.b[0, :], node.r.b[0, :]),
                np.maximum(node.l.b[-1, :], node.r.b[-1, :]),
            ]
        )

    def _get_bbox_top_down(self, node: Any) -> None:
        """Recomputes the boxes (and masses) of the branches below ``node`` from their children."""
        if isinstance(node, Branch):
            self._refresh_under(node)

    def _count_all_top_down(self, node: Any) -> None:
        """Recomputes the masses (and boxes) of the branches below ``node`` from their children."""
        if isinstance(node, Branch):
            self._refresh_under(node)

    def _update_leaf_count_upwards(self, node: Any, inc: int = 1) -> None:
        """rrcf's mass bookkeeping for its insert/forget. Here insert_point and forget_point keep
        masses consistent with the indices themselves, and a mass shifted by hand would break
        forget_point, so only ``inc=0`` is accepted."""
        if inc != 0:
            raise NotImplementedError(
                "masses are maintained by insert_point/forget_point in rcf_fast.rrcf and cannot "
                "be shifted by hand; insert or forget points instead"
            )

    def _serialize(self, node: Any, obj: dict, duplicates: dict) -> None:
        """Writes the subtree of ``node`` into ``obj`` in to_dict's format; ``duplicates`` maps
        each leaf to its list of indices (as to_dict builds it)."""
        stack = [(node, obj)]
        while stack:
            n, out = stack.pop()
            if isinstance(n, Branch):
                out.update(
                    type="Branch", q=int(n.q), p=float(n.p), n=int(n.n), b=n.b.tolist(), l={}, r={}
                )
                stack.append((n.r, out["r"]))
                stack.append((n.l, out["l"]))
            elif isinstance(n, Leaf):
                i = int(n.i) if isinstance(n.i, np.int64) else n.i
                out.update(
                    type="Leaf", i=i, x=n.x.tolist(), d=int(n.d), n=int(n.n), ixs=duplicates[n]
                )
            else:
                raise TypeError("`node` must be Branch or Leaf instance")

    def _deserialize(self, obj: dict, node: Any, duplicates: dict, side: str = "l") -> None:
        """rrcf builds Python node objects here; rcf_fast's nodes live in Rust, so a dict is
        loaded as a whole with load_dict (which also validates it)."""
        raise NotImplementedError(
            "rcf_fast.rrcf loads whole trees only: use tree.load_dict(obj) or RCTree.from_dict(obj)"
        )

    def _cut(self, X: Any, S: Any, parent: Any = None, side: str = "l") -> tuple:
        """rrcf's batch cut of the rows ``X[S]``: the dimension drawn with probability proportional
        to its span, the value uniformly in it (the same draws from the tree's stream as rrcf).
        Returns ``(S1, S2, (q, p))``: rcf_fast's branches live in Rust, so the cut is returned
        as a pair instead of an unattached Branch, and ``parent`` must be None."""
        if parent is not None:
            raise NotImplementedError(
                "rcf_fast.rrcf cannot attach a branch to a parent by hand; build trees with "
                "RCTree(X) or insert_point"
            )
        X = np.asarray(X, dtype=np.float64)
        S = np.asarray(S, dtype=bool)
        xmax = X[S].max(axis=0)
        xmin = X[S].min(axis=0)
        span = xmax - xmin
        prob = span / span.sum()
        if not np.all(np.isfinite(prob)) or not np.isclose(prob.sum(), 1.0):
            raise ValueError("probabilities contain NaN or do not sum to 1 (the spans overflow)")
        cdf = np.cumsum(prob)
        cdf /= cdf[-1]
        q = int(np.searchsorted(cdf, self._random_sample(), side="right"))
        p = xmin[q] + (xmax[q] - xmin[q]) * self._random_sample()
        S1 = (X[:, q] <= p) & S
        S2 = (~S1) & S
        return S1, S2, (q, p)

    def _mktree(
        self, X: Any, S: Any, N: Any, I: Any, parent: Any = None, side: str = "root", depth: int = 0
    ) -> None:
        """rrcf's recursive batch builder; rcf_fast builds in Rust from the constructor."""
        raise NotImplementedError(
            "rcf_fast.rrcf builds batch trees in its constructor: use RCTree(X, index_labels)"
        )

    @classmethod
    def from_dict(cls, obj: dict, compat: str | None = None, random_state: Any = None) -> RCTree:
        """A new tree from a ``to_dict`` dict (ours or rrcf's)."""
        tree = cls(random_state=random_state, compat=compat)
        tree.load_dict(obj)
        return tree

    def __reduce__(self) -> tuple:
        state = self._getstate()
        if state[2] is np.random.mtrand._rand:
            state = state[:2] + (None,) + state[3:]
        return (_restore, (type(self), state, dict(self.__dict__)))

    def __repr__(self) -> str:
        out: list[str] = []
        depth = ""
        stack: list[tuple[str, Any]] = [("node", self.root)]
        while stack:
            kind, value = stack.pop()
            if kind == "node":
                if isinstance(value, Leaf):
                    out.append(f"({value.i})\n")
                elif isinstance(value, Branch):
                    out.append("\u2500+\n")
                    out.append(f"{depth} \u251c\u2500\u2500")
                    depth += " \u2502  "
                    stack += [
                        ("pop", None),
                        ("node", value.r),
                        ("push", " "),
                        ("text", "\u2514\u2500\u2500"),
                        ("pop", None),
                        ("node", value.l),
                    ]
            elif kind == "push":
                depth += f" {value}  "
            elif kind == "pop":
                depth = depth[:-4]
            else:
                out.append(f"{depth} {value}")
        return "".join(out)


def shingle(sequence: Iterable, size: int) -> Iterator[np.ndarray]:
    """Yields rolling windows (numpy arrays) of ``size`` consecutive elements of ``sequence``."""
    iterator = iter(sequence)
    window: deque = deque((x for _, x in zip(range(size), iterator)), maxlen=size)
    if len(window) < size:
        raise IndexError("Sequence smaller than window size")
    yield np.asarray(window)
    for elem in iterator:
        window.append(elem)
        yield np.asarray(window)
