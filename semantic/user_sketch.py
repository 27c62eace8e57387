"""Distinct-count sketch for unique users and sessions in the live counters.

Exact while small (a sorted array of 64-bit hashes, up to ``SPARSE_LIMIT``), then a
HyperLogLog with 2^12 registers: standard error 1.04/sqrt(4096) ≈ 1.6 %.

Deterministic and order-independent: the same set of hashes always gives the same sketch
and the same estimate, whether it was fed live delta by delta or rebuilt from ClickHouse
(whose minute table keeps the same ``xxHash64`` values). That is what lets a restarted
counter shard come back with exactly the numbers it had.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xxhash

PRECISION = 12
REGISTERS = 1 << PRECISION
SPARSE_LIMIT = 2048
# Hashes queued by ``add`` before they are folded in anyway (bounds the memory of the queue).
QUEUE_LIMIT = 8192
STANDARD_ERROR = 1.04 / np.sqrt(REGISTERS)
_LOW_BITS = np.uint64((1 << (64 - PRECISION)) - 1)
_ALPHA = 0.7213 / (1 + 1.079 / REGISTERS)


def hash_text(value: str) -> int:
    """The 64-bit hash ClickHouse computes as ``xxHash64(value)``."""
    return xxhash.xxh64_intdigest(value.encode())


def _registers_of(hashes: np.ndarray) -> np.ndarray:
    registers = np.zeros(REGISTERS, dtype=np.uint8)
    if hashes.size:
        index = (hashes >> np.uint64(64 - PRECISION)).astype(np.int64)
        rest = (hashes & _LOW_BITS).astype(np.float64)  # < 2**52: exact in a double
        _, exponent = np.frexp(rest)  # bit length of rest; 0 for rest == 0
        rank = (64 - PRECISION + 1 - exponent).astype(np.uint8)
        np.maximum.at(registers, index, rank)
    return registers


def _sorted_unique(hashes: np.ndarray) -> np.ndarray:
    """``np.unique`` of 64-bit hashes (sorted, distinct), with less overhead for the small arrays
    the counters fold all the time."""
    out = np.sort(hashes.astype(np.uint64, copy=False))
    if out.size > 1:
        keep = np.empty(out.size, dtype=bool)
        keep[0] = True
        np.not_equal(out[1:], out[:-1], out=keep[1:])
        out = out[keep]
    return out


class UserSketch:
    """``add`` only queues hashes (a sorted-set union per added row was most of a counter
    shard's CPU); they are folded in, all at once, before anything reads the sketch."""

    __slots__ = ("_hashes", "_queued", "_queued_size", "_registers")

    def __init__(self, hashes: np.ndarray | None = None, registers: np.ndarray | None = None) -> None:
        self._hashes = hashes if hashes is not None or registers is not None else np.empty(0, np.uint64)
        self._registers = registers
        self._queued: list[np.ndarray] = []
        self._queued_size = 0

    @classmethod
    def of(cls, hashes: Iterable[int] | np.ndarray) -> UserSketch:
        sketch = cls()
        sketch.add(np.asarray(hashes if isinstance(hashes, np.ndarray) else list(hashes), dtype=np.uint64))
        return sketch

    @property
    def hashes(self) -> np.ndarray | None:
        if self._queued:
            self._fold()
        return self._hashes

    @property
    def registers(self) -> np.ndarray | None:
        if self._queued:
            self._fold()
        return self._registers

    @property
    def exact(self) -> bool:
        return self.registers is None

    def _exact_hashes(self) -> np.ndarray:
        """The hashes of a sketch that has no registers (exactly one of the two is set)."""
        assert self._hashes is not None, "a sketch holds either hashes or registers"
        return self._hashes

    def add(self, hashes: np.ndarray) -> None:
        if not hashes.size:
            return
        self._queued.append(hashes.astype(np.uint64, copy=False))
        self._queued_size += hashes.size
        if self._queued_size > QUEUE_LIMIT:
            self._fold()

    def _fold(self) -> None:
        if not self._queued:
            return
        if self._registers is not None:
            queued = np.concatenate(self._queued) if len(self._queued) > 1 else self._queued[0]
            self._queued, self._queued_size = [], 0
            np.maximum(self._registers, _registers_of(queued), out=self._registers)
            return
        merged = _sorted_unique(np.concatenate([self._hashes, *self._queued]))
        self._queued, self._queued_size = [], 0
        if merged.size > SPARSE_LIMIT:
            self._registers = _registers_of(merged)
            self._hashes = None
        else:
            self._hashes = merged

    def merge(self, other: UserSketch) -> None:
        if other.registers is not None:
            self._fold()
            if self._registers is None:
                self._registers = _registers_of(self._exact_hashes())
                self._hashes = None
            np.maximum(self._registers, other.registers, out=self._registers)
        else:
            self.add(other._exact_hashes())

    @classmethod
    def union(cls, sketches: Iterable[UserSketch]) -> UserSketch:
        sparse: list[np.ndarray] = []
        dense: list[np.ndarray] = []
        for s in sketches:
            registers = s.registers
            if registers is not None:
                dense.append(registers)
            else:
                sparse.append(s._exact_hashes())
        hashes = _sorted_unique(np.concatenate(sparse)) if sparse else np.empty(0, np.uint64)
        if not dense and hashes.size <= SPARSE_LIMIT:
            return cls(hashes=hashes)
        registers = _registers_of(hashes)
        for r in dense:
            np.maximum(registers, r, out=registers)
        return cls(hashes=None, registers=registers)

    def estimate(self) -> int:
        registers = self.registers
        if registers is None:
            return int(self._exact_hashes().size)
        raw = _ALPHA * REGISTERS * REGISTERS / float(np.sum(np.ldexp(1.0, -registers.astype(np.int32))))
        zeros = int(np.count_nonzero(registers == 0))
        if raw <= 2.5 * REGISTERS and zeros:
            return round(REGISTERS * np.log(REGISTERS / zeros))
        return round(raw)

    def to_wire(self) -> tuple[str, bytes]:
        """A compact form for Ray calls and Redis."""
        registers = self.registers
        if registers is None:
            return ("exact", self._exact_hashes().astype(np.uint64).tobytes())
        return ("hll", registers.tobytes())

    @classmethod
    def from_wire(cls, wire: tuple[str, bytes]) -> UserSketch:
        kind, raw = wire
        if kind == "exact":
            return cls(hashes=np.frombuffer(raw, dtype=np.uint64).copy())
        return cls(hashes=None, registers=np.frombuffer(raw, dtype=np.uint8).copy())
