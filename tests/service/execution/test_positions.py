"""The position book against a model broker: whatever order news arrives in whatever order, and whenever
snapshots are taken, a net the book claims to know is the broker's, less our own fills not yet reported."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from service.broker import BrokerError, Position
from service.execution.positions import PositionBook

KEYS = [("NSE", "3045", "INTRADAY"), ("NSE", "1594", "INTRADAY")]


@dataclass
class Order:
    tag: str
    key: tuple[str, str, str]
    signed: int  # units to fill, buy > 0
    ours: bool
    exit: bool = False
    filled: int = 0  # at the broker
    told: int = 0  # fills delivered as news
    finished: bool = False  # its last news delivered


@dataclass
class Broker:
    net: dict = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)

    def positions(self) -> list[Position]:
        return [Position(exchange=k[0], token=k[1], tradingsymbol="X", product=k[2], net_quantity=n, buy_quantity=0,
                         sell_quantity=0, buy_average=0, sell_average=0, ltp=0, realised=0, unrealised=0)
                for k, n in self.net.items()]


def undelivered(broker: Broker, key) -> int:
    return sum(o.filled - o.told for o in broker.orders if o.key == key and o.ours)


class Run:
    def __init__(self, ops: list[tuple]) -> None:
        self.broker = Broker()
        self.ops = list(ops)
        self.book = PositionBook(self.fetch)
        self.fail_next = False

    async def fetch(self) -> list[Position]:
        for _ in range(2):  # news and fills may happen while the request is out, before and after the broker reads
            self.step()
        if self.fail_next:
            self.fail_next = False
            raise BrokerError("positions unavailable")
        taken = self.broker.positions()
        self.step()
        return taken

    def step(self) -> None:
        if not self.ops:
            return
        op, n, amount = self.ops.pop(0)
        key = KEYS[n % len(KEYS)]
        book, broker = self.book, self.broker
        if op == "send":
            order = Order(f"tg{len(broker.orders)}", key, amount, ours=True, exit=amount < 0)
            broker.orders.append(order)
            book.place(order.tag, key, reserve=order.signed if order.exit else 0)
        elif op == "foreign":
            broker.orders.append(Order(f"x{len(broker.orders)}", key, amount, ours=False))
        elif op == "fill":  # the broker fills part of a working order
            working = [o for o in broker.orders if abs(o.filled) < abs(o.signed)]
            if working:
                order = working[n % len(working)]
                part = order.signed - order.filled if amount % 2 else (1 if order.signed > 0 else -1)
                order.filled += part
                broker.net[order.key] = broker.net.get(order.key, 0) + part
        elif op == "news":  # the news of one order's fills (and, once filled, its end) arrives
            pending = [o for o in broker.orders if not o.finished and (o.told != o.filled or o.filled == o.signed)]
            if pending:
                order = pending[n % len(pending)]
                delta, order.told = order.filled - order.told, order.filled
                done = order.filled == order.signed
                if order.ours:
                    if delta:
                        book.fill(order.tag, delta)  # an exit's fill is no longer reserved
                    if done:
                        book.settle(order.tag)
                        order.finished = True
                else:
                    if delta:
                        book.foreign(order.key)
                    order.finished = done
        elif op == "down":
            book.forget()
        elif op == "fail":
            self.fail_next = True

    def check(self) -> None:
        """Exact wherever nothing about another's order is still untold: a fill the broker has not
        reported yet is unknowable (a snapshot may or may not have caught it), for the book as for REST."""
        for key in KEYS:
            if any(not o.ours and o.told != o.filled for o in self.broker.orders if o.key == key):
                continue
            for long in (True, False):
                held = self.book.held(key, long)
                if held is None:
                    continue
                net = self.broker.net.get(key, 0) - undelivered(self.broker, key)
                reserved = sum(o.signed - o.told for o in self.broker.orders if o.key == key and o.ours and o.exit
                               and not o.finished)
                expected = net + reserved
                assert held == max(0, expected if long else -expected), (key, long, held, net, reserved)


OPS = st.tuples(st.sampled_from(["send", "foreign", "fill", "fill", "news", "news", "snapshot", "down", "fail"]),
                st.integers(0, 7), st.integers(-5, 5).filter(bool))


@settings(max_examples=600, deadline=None)
@given(st.lists(OPS, max_size=60))
def test_a_known_net_is_the_brokers_as_of_the_news_delivered(ops):
    async def main() -> None:
        run = Run(ops)
        while run.ops:
            if run.ops[0][0] == "snapshot":
                run.ops.pop(0)
                await run.book.refresh()
            else:
                run.step()
            run.check()

    asyncio.run(main())


def test_quiet_snapshot_then_own_fills_are_known_without_asking():
    async def main() -> None:
        run = Run([])
        run.broker.net[KEYS[0]] = 7  # held before tickguard started
        assert run.book.held(KEYS[0], True) is None
        assert await run.book.refresh()
        assert run.book.held(KEYS[0], True) == 7 and run.book.held(KEYS[1], True) == 0
        run.ops = [("send", 0, 3), ("fill", 0, 1), ("news", 0, 1)]
        run.step(), run.step(), run.step()
        assert run.book.held(KEYS[0], True) == 10
        run.ops = [("send", 0, -4)]  # an exit on its way: its units are no longer available to another
        run.step()
        assert run.book.held(KEYS[0], True) == 6
        run.ops = [("foreign", 0, -2), ("fill", 1, 1), ("news", 0, 1)]  # a manual sale fills
        run.step(), run.step(), run.step()
        assert run.book.held(KEYS[0], True) is None
        await run.book.refresh()  # the exit still works on it: still not known
        assert run.book.held(KEYS[0], True) is None
        run.ops = [("fill", 0, 1), ("news", 0, 1)]
        run.step(), run.step()
        assert await run.book.refresh()
        assert run.book.held(KEYS[0], True) == 4

    asyncio.run(main())


def test_overlapping_snapshots_each_leave_out_what_had_news_during_their_own_request():
    async def main() -> None:
        broker = Broker(net={KEYS[0]: 5, KEYS[1]: 2})
        answers: list[asyncio.Future] = []

        async def fetch() -> list[Position]:
            answers.append(asyncio.get_running_loop().create_future())
            return await answers[-1]

        book = PositionBook(fetch)
        first = asyncio.create_task(book.refresh())
        await asyncio.sleep(0)
        second = asyncio.create_task(book.refresh())
        await asyncio.sleep(0)
        book.foreign(KEYS[1])  # news during both requests
        answers[0].set_result(broker.positions())
        assert await first is False
        assert book.held(KEYS[0], True) == 5 and book.held(KEYS[1], True) is None
        book.place("tgaE1", KEYS[0])  # our own order fills, during the second request only
        book.fill("tgaE1", 3)
        broker.net[KEYS[0]] = 8
        answers[1].set_result(broker.positions())
        assert await second is False  # the second one saw news too, and is not thrown by the first's ending
        assert book.held(KEYS[0], True) == 8 and book.held(KEYS[1], True) is None

    asyncio.run(main())
