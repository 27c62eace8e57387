import gc
import weakref
from collections.abc import Iterator

import pytest

from core.heap import YOUNG_THRESHOLD, settle_heap, tune_for_serving


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_tuning_freezes_what_exists_and_collects_young_objects_rarely(restored_collector: None) -> None:
    survivor = _Node()
    tune_for_serving()
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    assert gc.get_freeze_count() > 0
    # Frozen: no collection walks it any more.
    assert not any(o is survivor for o in gc.get_objects())
    # Objects made after tuning are collected as usual.
    dead = _cycle()
    gc.collect()
    assert dead() is None


def test_settling_collects_cycles_that_died_while_frozen(restored_collector: None) -> None:
    dead = _cycle()
    gc.freeze()
    gc.collect()
    assert dead() is not None  # frozen: the collections do not look at it
    settle_heap()
    assert dead() is None
