"""The heap keeper: long-lived objects frozen out of the collector's walks, garbage cycles still reclaimed."""
from __future__ import annotations

import gc
import weakref

from service.gc_tuning import Heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cycle collector frees it


def test_settle_freezes_what_lives_and_maintain_keeps_freezing_survivors():
    now = [0.0]
    heap = Heap(freeze_every_s=60, full_every_s=3600, clock=lambda: now[0])
    try:
        kept = Node()
        heap.settle()
        assert gc.get_freeze_count() > 0
        dead = Node()
        ref = weakref.ref(dead)
        del dead
        later = Node()
        frozen = gc.get_freeze_count()
        now[0] = 61
        heap.maintain(guarding=True)
        assert ref() is None  # the young pass freed the dead cycle before freezing the survivors
        assert gc.get_freeze_count() > frozen and later.me is later and kept.me is kept
    finally:
        heap.release()
    assert gc.get_freeze_count() == 0


def test_a_full_pass_runs_only_while_nothing_is_guarded():
    now = [0.0]
    heap = Heap(freeze_every_s=60, full_every_s=3600, clock=lambda: now[0])
    try:
        heap.settle()
        now[0] = 4000
        heap.maintain(guarding=True)
        assert heap.full_passes == 0
        heap.maintain(guarding=False)
        assert heap.full_passes == 1
    finally:
        heap.release()


def test_the_collector_starts_no_full_pass_of_its_own_while_settled():
    """Young passes go on (young cycles are freed); the oldest generation is walked only by `maintain`'s
    full pass, never because survivors piled up."""
    started = gc.get_threshold()
    passes: list[int] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start":
            passes.append(info["generation"])

    heap = Heap(freeze_every_s=60, full_every_s=3600, clock=lambda: 0.0)
    gc.callbacks.append(seen)
    try:
        heap.settle()
        passes.clear()
        survivors = [Node() for _ in range(200_000)]  # enough allocations for many young passes
        dead = Node()
        ref = weakref.ref(dead)
        del dead
        more = [[n] for n in range(200_000)]
        assert passes and 2 not in passes and 0 in passes and 1 in passes
        assert ref() is None  # a young cycle still freed
        assert len(survivors) == len(more)
    finally:
        gc.callbacks.remove(seen)
        heap.release()
    assert gc.get_threshold() == started
