"""Where LoginFeed puts instruments, against a reference model, over random subscribe, unsubscribe and
mode-change sequences (the feed is not started: its sockets hold subscriptions without connecting)."""
from __future__ import annotations

import math

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from service.broker.smartapi.config import SmartApiConfig
from service.broker.smartapi.feeds import LoginFeed
from service.broker.smartapi.parsing import LTP, QUOTE, SNAP_QUOTE
from service.broker.smartapi.subscriptions import MAX_PAIRS, SubscriptionRefused

POOL = 4000  # instruments to draw from: more than three full sockets
modes = st.sampled_from([LTP, QUOTE, SNAP_QUOTE])
Pair = tuple[str, str]


def instrument(n: int) -> Pair:
    return ("NFO" if n % 2 else "BFO", str(40_000 + n))


async def never(*_: object) -> None:
    raise AssertionError("an unstarted feed asks for nothing")


class Model:
    """The rule, plainly: an instrument keeps its socket while subscribed; a new one goes to the socket
    with the most room (the lowest on a tie), a new socket only once every one is full; a subscription
    that would pass `limit` x 1000 instruments changes nothing."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.home: dict[Pair, int] = {}
        self.modes: dict[Pair, int] = {}
        self.sockets = 0

    def held(self, socket: int) -> int:
        return sum(1 for home in self.home.values() if home == socket)

    def subscribe(self, pairs: list[Pair], mode: int) -> bool:
        new = [pair for pair in dict.fromkeys(pairs) if pair not in self.home]
        if len(self.home) + len(new) > self.limit * MAX_PAIRS:
            return False
        counts = [self.held(socket) for socket in range(self.sockets)]
        for pair in new:
            if all(count == MAX_PAIRS for count in counts):
                counts.append(0)
                self.sockets += 1
            socket = counts.index(min(counts))
            counts[socket] += 1
            self.home[pair] = socket
        self.modes.update((pair, mode) for pair in pairs)
        return True

    def unsubscribe(self, pairs: list[Pair]) -> None:
        for pair in pairs:
            self.home.pop(pair, None)
            self.modes.pop(pair, None)


class Assignment(RuleBasedStateMachine):
    @initialize(limit=st.integers(1, 3))
    def open_feed(self, limit: int) -> None:
        config = SmartApiConfig(root="http://127.0.0.1:9", stream_url="ws://127.0.0.1:9/smart-stream",
                                order_update_url="", clientcode="P0001", pin="", api_key="", totp_secret="",
                                stream_sockets=limit)
        self.feed = LoginFeed(config, never, never)
        self.model = Model(limit)
        self.peak = 0  # the most instruments ever held at once
        self.homes: dict[Pair, int] = {}  # where each subscribed instrument was after the last step

    def _subscribe(self, pairs: list[Pair], mode: int) -> None:
        before = self.feed.subscriptions
        try:
            self.feed.subscribe(pairs, mode)
            refused = False
        except SubscriptionRefused as exc:
            refused = True
            total = len(self.model.home.keys() | set(pairs))
            assert exc.requested == total and f"{total} instruments" in str(exc)
            assert f"SmartAPI's {self.model.limit * MAX_PAIRS} subscriptions per login" in str(exc)
            assert self.feed.subscriptions == before, "a refused subscription changed something"
        assert refused == (not self.model.subscribe(pairs, mode))
        self.peak = max(self.peak, len(self.model.home))

    @rule(start=st.integers(0, POOL - 1), count=st.integers(0, 1200), mode=modes)
    def subscribe_a_run(self, start: int, count: int, mode: int) -> None:
        self._subscribe([instrument(n) for n in range(start, min(POOL, start + count))], mode)

    @rule(picks=st.lists(st.integers(0, POOL - 1), max_size=20), mode=modes)
    def subscribe_some(self, picks: list[int], mode: int) -> None:
        self._subscribe([instrument(n) for n in picks], mode)

    @rule(mode=modes, data=st.data())
    def change_the_mode_of_some_held(self, mode: int, data: st.DataObject) -> None:
        held = sorted(self.model.home)
        if held:
            picked = data.draw(st.lists(st.sampled_from(held), min_size=1, max_size=10))
            self._subscribe(picked, mode)

    @rule(extra=st.integers(-2, 2), mode=modes)
    def fill_to_about_the_limit(self, extra: int, mode: int) -> None:
        """Exactly up to the limit, or a little short of it or past it: where an off-by-one would show."""
        wanted = self.model.limit * MAX_PAIRS - len(self.model.home) + extra
        free = [pair for pair in map(instrument, range(POOL)) if pair not in self.model.home]
        self._subscribe(free[:max(0, wanted)], mode)

    @rule(start=st.integers(0, POOL - 1), count=st.integers(0, 1500))
    def unsubscribe_a_run(self, start: int, count: int) -> None:
        pairs = [instrument(n) for n in range(start, min(POOL, start + count))]
        self.feed.unsubscribe(pairs)
        self.model.unsubscribe(pairs)

    @rule(picks=st.lists(st.integers(0, POOL - 1), max_size=20))
    def unsubscribe_some(self, picks: list[int]) -> None:
        pairs = [instrument(n) for n in picks]
        self.feed.unsubscribe(pairs)
        self.model.unsubscribe(pairs)

    @invariant()
    def every_instrument_is_on_the_models_socket_and_no_other(self) -> None:
        if not hasattr(self, "feed"):
            return
        on_sockets = [set(socket.subscriptions) for socket in self.feed.sockets]
        expected = [{pair for pair, home in self.model.home.items() if home == n} for n in range(self.model.sockets)]
        assert on_sockets == expected
        assert sum(len(pairs) for pairs in on_sockets) == len(self.model.home)  # so each on exactly one
        assert self.feed.subscriptions == self.model.modes
        assert all(socket.held <= MAX_PAIRS for socket in self.feed.sockets)

    @invariant()
    def sockets_open_only_when_needed(self) -> None:
        if not hasattr(self, "feed"):
            return
        assert len(self.feed.sockets) == math.ceil(self.peak / MAX_PAIRS) <= self.model.limit

    @invariant()
    def instruments_stay_on_their_socket_while_subscribed(self) -> None:
        if not hasattr(self, "feed"):
            return
        homes = {pair: self.feed.socket_of(pair) for pair in self.model.home}
        assert all(homes[pair] == number for pair, number in self.homes.items() if pair in homes)
        self.homes = homes


TestAssignment = Assignment.TestCase
TestAssignment.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
