"""Arrow tables cross actor boundaries as IPC buffers: exact rows, types and slices."""

from datetime import UTC, datetime

import pyarrow as pa

from core.arrow_ipc import pack, unpack


def test_round_trip_keeps_rows_types_and_nulls() -> None:
    table = pa.table(
        {
            "id": ["a", "b", None],
            "n": pa.array([1, 2, 3], pa.uint64()),
            "at": pa.array([datetime(2026, 1, 1, tzinfo=UTC)] * 3, pa.timestamp("ms", tz="UTC")),
            "users": pa.array([[1], [], [2, 3]], pa.list_(pa.uint64())),
        }
    )
    back = unpack(pack(table))
    assert back.schema == table.schema
    assert back.to_pylist() == table.to_pylist()


def test_a_slice_carries_only_its_rows() -> None:
    table = pa.table({"text": ["x" * 1000] * 1000})
    part = table.slice(10, 2)
    payload = pack(part)
    assert unpack(payload).to_pylist() == part.to_pylist()
    assert len(payload) < len(pack(table)) / 100
