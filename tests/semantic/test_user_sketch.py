import numpy as np

from semantic.user_sketch import SPARSE_LIMIT, STANDARD_ERROR, UserSketch, hash_text


def hashes(n: int, start: int = 0) -> np.ndarray:
    return np.array([hash_text(f"user-{i}") for i in range(start, start + n)], dtype=np.uint64)


def test_exact_while_small():
    sketch = UserSketch.of(hashes(500))
    sketch.add(hashes(300, start=400))  # 100 overlap
    assert sketch.exact
    assert sketch.estimate() == 700


def test_hyperloglog_within_four_standard_errors():
    sketch = UserSketch.of(hashes(100_000))
    assert not sketch.exact
    assert abs(sketch.estimate() - 100_000) / 100_000 < 4 * STANDARD_ERROR


def test_order_and_grouping_do_not_change_the_result():
    values = hashes(10_000)
    one = UserSketch.of(values)
    parts = [UserSketch.of(values[i::7]) for i in range(7)]
    merged = UserSketch.union(reversed(parts))
    step = UserSketch()
    for p in parts:
        step.merge(p)
    assert one.estimate() == merged.estimate() == step.estimate()
    assert np.array_equal(one.registers, merged.registers)


def test_union_switches_to_registers_past_the_limit():
    a = UserSketch.of(hashes(SPARSE_LIMIT))
    b = UserSketch.of(hashes(10, start=SPARSE_LIMIT))
    assert a.exact and b.exact
    assert not UserSketch.union([a, b]).exact


def test_wire_round_trip():
    for n in (5, 5000):
        s = UserSketch.of(hashes(n))
        assert UserSketch.from_wire(s.to_wire()).estimate() == s.estimate()


def test_hash_matches_clickhouse_xxhash64():
    # SELECT xxHash64('abc') in ClickHouse
    assert hash_text("abc") == 4952883123889572249
