"""The write-ahead log in front of ClickHouse: where an event is durable when it is acknowledged.

A chDB insert costs about the same CPU whatever its size (one new part per insert; measured
in bench/), so acknowledging after each insert spent most of the CPU on part creation under
a steady stream of small requests. Instead each accepted batch is appended here and fsync'd (far
cheaper), acknowledged, and inserted into ClickHouse a moment later together with the batches
that arrived meanwhile.

Layout: segment files ``wal-<first seq>.log`` of records
``[length u32][crc32 u32][seq u64][Arrow IPC stream]`` (little endian), and a ``checkpoint``
file holding the highest seq known to be in ClickHouse. Segments wholly at or below the
checkpoint are deleted. On open, a torn record at the end of the last segment (a crash in
the middle of an append, never acknowledged) is cut off.

Threads: one thread appends (the store's append thread); one thread at a time checkpoints (the
ClickHouse write thread, or the append thread while it replays at start); any thread may read
``last_seq`` and ``checkpointed``, without a lock: each is an int that only one thread assigns
(an attribute read is atomic under the GIL). ``_lock`` guards the segment list and the checkpoint
with it, in memory only: no file is opened, written, fsync'd or deleted while it is held, so a
reader, an append and a checkpoint never wait for each other's disk work. ``_file_lock`` guards
the open segment: an append holds it through its write and fsync, and ``close`` takes it, so a
segment is never closed under an append; no other caller takes it.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from core.arrow_ipc import pack, unpack

_HEADER = struct.Struct("<IIQ")
_PREFIX = "wal-"
_SUFFIX = ".log"
# A new segment is started past this size, so checkpointed data is deleted in steps.
SEGMENT_BYTES = 64 * 1024 * 1024


class CorruptLog(RuntimeError):
    """A record the log cannot read, not at its very end: the store refuses to start without it."""


class WriteAheadLog:
    def __init__(self, folder: Path, *, fsync: bool = True) -> None:
        self._folder = folder
        self._fsync = fsync
        folder.mkdir(parents=True, exist_ok=True)
        # The segment list and, with it, the checkpoint (in memory only; see the module docstring).
        self._lock = threading.Lock()
        # The open segment and its size: one append at a time, and close.
        self._file_lock = threading.Lock()
        self._checkpointed = self._read_checkpoint()
        self._last_seq = self._checkpointed
        self._segments: list[tuple[int, Path]] = sorted(
            (int(p.name[len(_PREFIX) : -len(_SUFFIX)]), p) for p in folder.glob(f"{_PREFIX}*{_SUFFIX}")
        )
        for i, (_, path) in enumerate(self._segments):
            self._last_seq = max(self._last_seq, self._scan(path, last=i == len(self._segments) - 1))
        self._file: BinaryIO | None = None
        self._file_size = 0

    @property
    def last_seq(self) -> int:
        """The seq of the last durable record (assigned by the appending thread only, after the fsync)."""
        return self._last_seq

    @property
    def checkpointed(self) -> int:
        """The highest seq known to be in ClickHouse (assigned by the checkpointing thread only)."""
        return self._checkpointed

    # ---- appending ------------------------------------------------------------------------
    def append(self, table: pa.Table) -> int:
        """Write ``table`` and make it durable; returns its seq."""
        return self.append_packed_records([pack(table)])

    def append_packed_records(self, payloads: Sequence[bytes]) -> int:
        """Write tables already in Arrow IPC form (core/arrow_ipc.py pack) as consecutive records,
        with one write and one fsync for all of them, and no copy of the callers' bytes; returns the
        seq of the last (the first is that less len - 1)."""
        with self._file_lock:
            first = self._last_seq + 1
            file = self._file
            if file is None or self._file_size >= SEGMENT_BYTES:
                file = self._roll(first)
            pieces: list[bytes] = []
            for seq, payload in enumerate(payloads, first):
                pieces += (_HEADER.pack(len(payload), zlib.crc32(payload), seq), payload)
            _write_all(file.fileno(), *pieces)
            if self._fsync:
                os.fdatasync(file.fileno())
            self._file_size += sum(len(piece) for piece in pieces)
            last = first + len(payloads) - 1
            # Published once durable: whoever reads it may rely on every record up to it.
            self._last_seq = last
        return last

    def _roll(self, first_seq: int) -> BinaryIO:
        """Start a new segment (called with ``_file_lock`` held, ``_lock`` not)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        path = self._folder / f"{_PREFIX}{first_seq:020d}{_SUFFIX}"
        # Unbuffered: records go out with one writev each, never through a copy.
        file = open(path, "ab", buffering=0)  # noqa: SIM115 - kept open across appends
        self._file = file
        self._file_size = file.tell()
        with self._lock:
            self._segments.append((first_seq, path))
        if self._fsync:
            _fsync_dir(self._folder)
        return file

    # ---- after the rows are in ClickHouse -------------------------------------------------
    def checkpoint(self, seq: int) -> None:
        """Every record up to ``seq`` is in ClickHouse: remember it and drop what is no longer needed."""
        if seq <= self._checkpointed:
            return
        tmp = self._folder / "checkpoint.tmp"
        tmp.write_text(str(seq))
        os.replace(tmp, self._folder / "checkpoint")
        dropped: list[Path] = []
        with self._lock:
            self._checkpointed = seq
            # A segment can go once the next one starts at or below the checkpoint + 1.
            while len(self._segments) > 1 and self._segments[1][0] <= seq + 1:
                dropped.append(self._segments.pop(0)[1])
        # Unlisted above, deleted here: whole segments take a while to delete.
        for path in dropped:
            path.unlink(missing_ok=True)

    # ---- after a restart ------------------------------------------------------------------
    def unstored(self) -> Iterator[tuple[int, pa.Table]]:
        """The records after the checkpoint, in order: acknowledged, maybe not yet in ClickHouse."""
        with self._lock:
            segments, checkpointed = list(self._segments), self._checkpointed
        for _, path in segments:
            for seq, payload, _ in _records(path):
                if seq > checkpointed:
                    yield seq, unpack(payload)

    def close(self) -> None:
        """Close the open segment, after an append under way (an append after this opens a new one)."""
        with self._file_lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    # ---- internals ------------------------------------------------------------------------
    def _read_checkpoint(self) -> int:
        path = self._folder / "checkpoint"
        return int(path.read_text()) if path.exists() else 0

    def _scan(self, path: Path, *, last: bool) -> int:
        """The last seq in ``path``. A torn tail of the newest segment (a crash during an append
        that was never acknowledged) is cut off; a bad record anywhere else is corruption."""
        last_seq, good_end = 0, 0
        for seq, _, end in _records(path):
            last_seq, good_end = seq, end
        size = path.stat().st_size
        if good_end != size:
            if not last:
                raise CorruptLog(
                    f"{path}: unreadable record at byte {good_end} of {size}; acknowledged events may follow it"
                )
            with open(path, "r+b") as f:
                f.truncate(good_end)
        return last_seq


def _records(path: Path) -> Iterator[tuple[int, bytes, int]]:
    """(seq, payload, end offset) of each readable record, stopping at the first bad one."""
    data = path.read_bytes()
    pos = 0
    while pos + _HEADER.size <= len(data):
        length, crc, seq = _HEADER.unpack_from(data, pos)
        start, end = pos + _HEADER.size, pos + _HEADER.size + length
        if end > len(data) or zlib.crc32(data[start:end]) != crc:
            return
        yield seq, data[start:end], end
        pos = end


# writev takes at most this many buffers at once (EINVAL past it); a group of many callers'
# records is written in runs of this size.
_IOV_MAX = os.sysconf("SC_IOV_MAX") if "SC_IOV_MAX" in os.sysconf_names else 1024


def _write_all(fd: int, *pieces: bytes) -> None:
    views = [memoryview(piece) for piece in pieces]
    while views:
        written = os.writev(fd, views[:_IOV_MAX])
        if written == 0:
            raise OSError(f"write-ahead log: no byte of {sum(len(v) for v in views)} written")
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views:
            views[0] = views[0][written:]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
