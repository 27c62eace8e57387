import numpy as np
import xxhash

from storage.id_index import IdHashIndex, hash_ids


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def test_hash_ids_is_xxh64_of_utf8():
    ids = ["", "a", "evt-1", "événement", "日本語", "x" * 1000]
    hashes = hash_ids(ids)
    assert hashes.dtype == np.uint64
    assert hashes.tolist() == [xxhash.xxh64_intdigest(i.encode("utf-8")) for i in ids]
    # Known value, so a change of seed or algorithm is caught too.
    assert int(hash_ids(["a"])[0]) == 0xD24EC4F1A98C6E5B


def test_hash_ids_empty():
    hashes = hash_ids([])
    assert hashes.dtype == np.uint64 and hashes.shape == (0,)


def test_empty_index():
    index = IdHashIndex()
    assert len(index) == 0
    assert index.contains(hash_ids(["a", "b"])).tolist() == [False, False]
    assert index.contains(np.empty(0, np.uint64)).tolist() == []


def test_repeated_initial_hashes_are_harmless():
    index = IdHashIndex(hash_ids(["a", "b", "a"]))
    assert len(index) == 3
    assert index.contains(hash_ids(["b", "c", "a"])).tolist() == [True, False, True]


def test_add_then_contains_mixed_mask():
    index = IdHashIndex(hash_ids(["old-1", "old-2"]))
    index.add(hash_ids(["new-1", "new-2"]))
    mask = index.contains(hash_ids(["new-2", "nope", "old-1", "new-1", "other", "old-2"]))
    assert mask.tolist() == [True, False, True, True, False, True]
    assert len(index) == 4


def test_adding_nothing_is_a_no_op():
    index = IdHashIndex(hash_ids(["a"]))
    index.add(np.empty(0, np.uint64))
    assert len(index) == 1
    assert index._recent == []


def test_many_small_adds_merge_into_the_sorted_array():
    index = IdHashIndex()
    batches = [_ids(f"b{n}", 5) for n in range(40)]
    for n, batch in enumerate(batches, start=1):
        index.add(hash_ids(batch))
        # Never more than 16 unmerged runs.
        assert len(index._recent) <= 16
        seen = [i for b in batches[:n] for i in b]
        assert index.contains(hash_ids(seen)).all()
        assert not index.contains(hash_ids(_ids("never", 5))).any()
        assert len(index) == 5 * n
    # The 17th and the 34th add merged the runs into the middle level; six runs are still pending.
    assert index._middle.size == 34 * 5
    assert len(index._recent) == 6
    assert np.all(np.diff(index._middle.astype(np.uint64)) > 0)


def test_the_middle_level_merges_into_the_main_array_at_an_eighth_of_it():
    index = IdHashIndex(hash_ids(_ids("base", 800_000)))
    index.add(hash_ids(_ids("m", 70_000)))  # over the run size limit: straight to the middle level
    assert index._recent == [] and index._middle.size == 70_000 and index._sorted.size == 800_000
    index.add(hash_ids(_ids("n", 70_000)))  # the middle passes 100k = 800k / 8: one main array
    assert index._middle.size == 0 and index._sorted.size == 940_000
    assert np.all(np.diff(index._sorted.astype(np.uint64)) >= 0)
    probe = hash_ids(["base-799999", "m-0", "n-69999", "n-70000"])
    assert index.contains(probe).tolist() == [True, True, True, False]


def test_large_add_merges_at_once():
    index = IdHashIndex(hash_ids(_ids("base", 10)))
    big = _ids("big", 70_000)
    index.add(hash_ids(big))
    assert index._recent == []
    assert index._middle.size + index._sorted.size == 70_010
    probe = hash_ids(["big-0", "big-69999", "base-3", "big-70000", "base-10"])
    assert index.contains(probe).tolist() == [True, True, True, False, False]


def test_repeats_across_adds_are_harmless():
    index = IdHashIndex()
    for _ in range(17):
        index.add(hash_ids(["same", "also-same"]))
    assert index._recent == []
    assert len(index) == 34
    assert index.contains(hash_ids(["same", "also-same", "other"])).tolist() == [True, True, False]


def test_contains_hashes_beyond_the_largest_stored():
    # searchsorted returns len(array) for values past the end; those must not match.
    stored = np.array([10, 20, 30], dtype=np.uint64)
    index = IdHashIndex(stored)
    probe = np.array([5, 10, 25, 30, 31, np.iinfo(np.uint64).max], dtype=np.uint64)
    assert index.contains(probe).tolist() == [False, True, False, True, False, False]


def test_full_uint64_range_is_exact():
    top = np.iinfo(np.uint64).max
    index = IdHashIndex(np.array([top, top - 1], dtype=np.uint64))
    index.add(np.array([2**63, 0], dtype=np.uint64))
    probe = np.array([top, top - 2, 2**63, 2**63 + 1, 0, 1], dtype=np.uint64)
    assert index.contains(probe).tolist() == [True, False, True, False, True, False]
