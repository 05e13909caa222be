"""A tick-stage plug-in that passes every tick through and keeps it: what the stop engine saw, in order.

    PLUGINS='[{"stage": "tick", "factory": "tests.support.taps:engine_tap"}]'

For a service run in this process (tests.support.service); `SEEN` is cleared by the factory.
"""
from __future__ import annotations

from reactivex import operators as ops

from streams import Tick

SEEN: list[Tick] = []
PLUGINS = '[{"stage": "tick", "factory": "tests.support.taps:engine_tap"}]'


def engine_tap():
    SEEN.clear()
    return ops.do_action(SEEN.append)
