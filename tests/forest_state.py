"""Reads and re-seals the saved state of a RandomCutForest (format 2) for adversarial tests.

The layout is rust/rcf-core/src/serialize.rs: an 8-byte magic, the format version (u32), the
payload length (u64), the CRC-32 of the payload (u32), then the forest encoded with bincode
(fixed-size little-endian integers, a u64 before every sequence, a u8 tag before an Option, a
u32 tag before an enum variant). `parse` returns every field with its byte offset, so that a test
can change one field and `seal` the payload again with a valid checksum.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

MAGIC = b"RCFFAST\0"
HEADER = 8 + 4 + 8 + 4


@dataclass
class Seq:
    """A sequence field: offset of its u64 length, element count, element format."""

    at: int
    count: int
    fmt: str

    @property
    def start(self) -> int:
        return self.at + 8

    @property
    def size(self) -> int:
        return struct.calcsize("<" + self.fmt)

    @property
    def end(self) -> int:
        return self.start + self.count * self.size


@dataclass
class Tree:
    dim_at: int
    root_at: int
    nodes: Seq  # (cut f32, left u16, right u16, dim u16, mass u16)
    node_box: Seq
    free_node_at: int
    leaf: Seq
    big_mass: Seq
    free_leaf_at: int
    boxes: Seq
    free_box: Seq
    sampler_tag: int
    weights: Seq | None = None
    leaves: Seq | None = None
    next_at: int | None = None
    epoch_at: int | None = None
    fifo: Seq | None = None
    rng_at: int = 0


@dataclass
class State:
    payload: bytearray
    config: dict[str, int] = field(default_factory=dict)
    store_dim_at: int = 0
    data: Seq | None = None
    refs: Seq | None = None
    free: Seq | None = None
    trees: list[Tree] = field(default_factory=list)
    shingle_recent: Seq | None = None
    entries_seen_at: int = 0
    points_seen_at: int = 0

    def put(self, at: int, fmt: str, *values: object) -> None:
        struct.pack_into("<" + fmt, self.payload, at, *values)

    def get(self, at: int, fmt: str) -> tuple:
        return struct.unpack_from("<" + fmt, self.payload, at)

    def item_at(self, seq: Seq, i: int) -> int:
        return seq.start + i * seq.size


class _Reader:
    def __init__(self, buf: bytes | bytearray) -> None:
        self.buf = buf
        self.at = 0

    def take(self, fmt: str) -> tuple:
        fmt = "<" + fmt
        v = struct.unpack_from(fmt, self.buf, self.at)
        self.at += struct.calcsize(fmt)
        return v

    def seq(self, fmt: str) -> Seq:
        at = self.at
        (n,) = self.take("Q")
        s = Seq(at, n, fmt)
        self.at = s.end
        return s

    def option(self, fmt: str) -> int:
        at = self.at
        (tag,) = self.take("B")
        if tag:
            self.take(fmt)
        return at


def payload_of(blob: bytes) -> bytearray:
    assert blob[:8] == MAGIC
    return bytearray(blob[HEADER:])


def seal(payload: bytes | bytearray, version: int = 2) -> bytes:
    """Header, length and CRC-32 (crc32fast computes the same CRC-32 as zlib) of `payload`."""
    return (
        MAGIC
        + struct.pack("<IQI", version, len(payload), zlib.crc32(bytes(payload)) & 0xFFFFFFFF)
        + bytes(payload)
    )


def parse(blob: bytes) -> State:
    """Every field of a format-2 state, with its offset in the payload."""
    p = payload_of(blob)
    r = _Reader(p)
    st = State(p)
    for name in ("dimensions", "shingle_size", "num_trees", "sample_size"):
        st.config[name + "_at"] = r.at
        (st.config[name],) = r.take("Q")
    st.config["time_decay_at"] = r.option("d")
    st.config["sampler_at"] = r.at
    (st.config["sampler"],) = r.take("I")
    st.config["scoring_at"] = r.at
    (st.config["scoring"],) = r.take("I")
    for name in ("output_after", "seed", "threads"):
        st.config[name + "_at"] = r.option("Q")
    st.store_dim_at = r.at
    r.take("Q")
    st.data = r.seq("f")
    st.refs = r.seq("H")
    st.free = r.seq("I")
    (n_trees,) = r.take("Q")
    for _ in range(n_trees):
        dim_at = r.at
        r.take("Q")
        root_at = r.at
        r.take("H")
        nodes = r.seq("fHHHH")
        node_box = r.seq("H")
        free_node_at = r.at
        r.take("H")
        leaf = r.seq("I")
        big_mass = r.seq("HI")
        free_leaf_at = r.at
        r.take("H")
        boxes = r.seq("f")
        free_box = r.seq("H")
        tag_at = r.at
        (tag,) = r.take("I")
        t = Tree(
            dim_at,
            root_at,
            nodes,
            node_box,
            free_node_at,
            leaf,
            big_mass,
            free_leaf_at,
            boxes,
            free_box,
            tag_at,
        )
        if tag == 0:
            t.weights = r.seq("f")
            t.leaves = r.seq("H")
            t.next_at = r.at
            r.take("Q")
            t.epoch_at = r.at
            r.take("Q")
        else:
            t.fifo = r.seq("H")
        t.rng_at = r.at
        r.take("4Q")
        st.trees.append(t)
    r.take("QQ")  # shingle dims, size
    st.shingle_recent = r.seq("f")
    st.entries_seen_at = r.at
    r.take("Q")
    st.points_seen_at = r.at
    r.take("Q")
    assert r.at == len(p), (r.at, len(p))
    return st
