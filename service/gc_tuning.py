"""Keep the cycle collector's full passes off the tick path.

A full (generation 2) collection walks every tracked object: with ten thousand armed trades that took
60–250 ms on the benchmark machine, a stall in which no tick is read and no exit sent. So what lives
long is frozen (`gc.freeze`: the collector no longer walks it) and full passes only run when nothing
is guarded:

- `settle()` after start-up: modules, the symbol index, recovered and re-armed trades;
- `maintain()` once a second: every `freeze_every_s` the young generations are collected (cheap, and
  it frees the young garbage cycles) and the survivors frozen; while no trade is guarded, at most once
  every `full_every_s`, everything is unfrozen and collected for real — what froze as garbage (a cycle
  that died after the last young pass) is reclaimed there.

The collector's own full passes are held off too: left to itself, CPython runs one after every ten
passes of the middle generation once enough survivors have piled up since the last freeze, and right
after a burst of armed trades (9 000 in the benchmark) four of them took 10–45 ms each, while the
trades armed first were already guarded. From `settle()` on, the oldest generation's threshold is out of reach;
the young generations are collected as before, survivors are frozen by `maintain()`, and the full
passes are the ones above. `release()` puts the thresholds back.

Reference counting still frees everything that is not in a cycle, frozen or not.
"""
from __future__ import annotations

import gc
import time
from collections.abc import Callable

__all__ = ["Heap"]

NO_AUTOMATIC_FULL_PASS = 1 << 30  # gen-1 passes before the collector would start a full one by itself
_THRESHOLDS = gc.get_threshold()  # as the interpreter started


class Heap:
    def __init__(self, *, freeze_every_s: float = 60.0, full_every_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.freeze_every_s = freeze_every_s
        self.full_every_s = full_every_s
        self.clock = clock
        self._frozen_at = self._full_at = clock()
        self.full_passes = 0

    def settle(self) -> None:
        """Unfreeze, collect everything, freeze what is left (start-up, and whenever nothing is guarded)."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        young, older, _ = gc.get_threshold()
        gc.set_threshold(young, older, NO_AUTOMATIC_FULL_PASS)
        self._frozen_at = self._full_at = self.clock()

    @staticmethod
    def release() -> None:
        """At shutdown: hand everything back to the collector, with the thresholds it started with."""
        gc.unfreeze()
        gc.set_threshold(*_THRESHOLDS)

    def maintain(self, guarding: bool) -> None:
        now = self.clock()
        if not guarding and now - self._full_at >= self.full_every_s:
            self.settle()
            self.full_passes += 1
        elif now - self._frozen_at >= self.freeze_every_s:
            gc.collect(1)
            gc.freeze()
            self._frozen_at = now
