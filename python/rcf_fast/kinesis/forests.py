"""One forest per series key, all built from one configuration, and their versioned state blob.

Each key's forest gets a seed derived from the configuration seed and the key with a stable hash
(BLAKE2b, not Python's salted ``hash``), so a restarted consumer, another process, or a clean
single pass over the same records all build bit-identical forests.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator
from typing import Any, Callable

from rcf_fast.kinesis.errors import ConfigError, StateError
from rcf_fast.kinesis.records import Position

MAGIC = b"RCFK"
FORMAT_VERSION = 1
FOREST_PARAMS = (
    "shingle_size",
    "num_trees",
    "sample_size",
    "time_decay",
    "sampler",
    "scoring",
    "output_after",
    "seed",
    "threads",
)
# Parameters that do not change what a forest learns; a state may be reloaded under other values.
_RUNTIME_ONLY = ("threads",)


def derive_seed(seed: int | None, key: str) -> int:
    """A 63-bit seed for ``key``'s forest, stable across processes and Python versions."""
    digest = hashlib.blake2b(
        f"{seed if seed is not None else ''}\x00{key}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    """Reject unknown forest parameters early with the list of known ones."""
    unknown = sorted(set(params) - set(FOREST_PARAMS))
    if unknown:
        raise ConfigError(
            f"unknown forest parameter(s) {unknown}; expected some of {list(FOREST_PARAMS)}"
        )
    return dict(params)


ForestFactory = Callable[..., Any]


def default_factory(**kwargs: Any) -> Any:
    import rcf_fast

    return rcf_fast.RandomCutForest(**kwargs)


def _default_loader(data: bytes) -> Any:
    import rcf_fast

    return rcf_fast.RandomCutForest.from_bytes(data)


class KeyedForests:
    """The forests of every key, plus the per-shard positions they have learned up to."""

    def __init__(
        self,
        params: dict[str, Any],
        factory: ForestFactory | None = None,
        loader: Callable[[bytes], Any] | None = None,
    ) -> None:
        self.params = check_params(params)
        self.factory = factory or default_factory
        self.loader = loader or _default_loader
        self.forests: dict[str, Any] = {}
        self.positions: dict[str, Position] = {}
        self.value_fields: list[str] | None = None
        self.schema_spec: str | None = None

    def get(self, key: str, dimensions: int) -> Any:
        forest = self.forests.get(key)
        if forest is None:
            kwargs = {k: v for k, v in self.params.items() if k != "seed"}
            forest = self.factory(
                dimensions=dimensions, seed=derive_seed(self.params.get("seed"), key), **kwargs
            )
            self.forests[key] = forest
        return forest

    def __len__(self) -> int:
        return len(self.forests)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(sorted(self.forests.items()))

    # -- state -------------------------------------------------------------------------------

    def _fingerprint(self) -> dict[str, Any]:
        return {k: v for k, v in sorted(self.params.items()) if k not in _RUNTIME_ONLY}

    def to_bytes(self) -> bytes:
        """Versioned blob: magic, version, JSON header (config, positions, keys), forest bytes."""
        blobs = [(key, forest.to_bytes()) for key, forest in sorted(self.forests.items())]
        header = {
            "config": self._fingerprint(),
            "positions": {s: [str(p[0]), p[1], p[2]] for s, p in sorted(self.positions.items())},
            "value_fields": self.value_fields,
            "schema": self.schema_spec,
            "keys": [[key, len(b)] for key, b in blobs],
        }
        head = json.dumps(header, sort_keys=True).encode()
        return b"".join(
            [MAGIC, struct.pack("<HI", FORMAT_VERSION, len(head)), head] + [b for _, b in blobs]
        )

    def load_bytes(self, data: bytes) -> None:
        """Replace this object's forests and positions with a blob from ``to_bytes``."""
        if len(data) < 10 or not data.startswith(MAGIC):
            raise StateError(
                "state blob does not start with the rcf_fast.kinesis magic; not our state"
            )
        version, head_len = struct.unpack_from("<HI", data, 4)
        if version != FORMAT_VERSION:
            raise StateError(
                f"state format version {version}; this rcf_fast reads version {FORMAT_VERSION}"
            )
        try:
            header = json.loads(data[10 : 10 + head_len])
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StateError(f"state header is corrupt: {exc}") from None
        if header.get("config") != self._fingerprint():
            raise StateError(
                f"state was written with forest parameters {header.get('config')}, "
                f"now configured {self._fingerprint()}; "
                "use a new --state path or the same parameters"
            )
        forests: dict[str, Any] = {}
        offset = 10 + head_len
        for key, size in header["keys"]:
            chunk = data[offset : offset + size]
            if len(chunk) != size:
                raise StateError(f"state blob truncated in the forest of key {key!r}")
            try:
                forests[key] = self.loader(chunk)
            except (ValueError, TypeError) as exc:
                raise StateError(f"forest of key {key!r} does not load: {exc}") from None
            offset += size
        if offset != len(data):
            raise StateError(f"state blob has {len(data) - offset} trailing bytes")
        self.forests = forests
        self.positions = {
            s: (int(p[0]), int(p[1]), int(p[2])) for s, p in header["positions"].items()
        }
        self.value_fields = header.get("value_fields")
        self.schema_spec = header.get("schema")
