"""Position books by login and by order: what execution reports by tag, and what an exit may sell."""
from __future__ import annotations

from service.broker import OrderRequest, OrderSide
from service.broker.model import ModelBroker
from service.execution.positions import Books, PositionBook
from tests.service.execution.conftest import KEY, PRICE, SBIN


class Counted:
    """The broker's positions, counting the times they were asked for."""

    def __init__(self, broker: ModelBroker) -> None:
        self.broker = broker
        self.calls = 0

    async def __call__(self):
        self.calls += 1
        return await self.broker.positions()


async def buy(broker: ModelBroker, quantity: int) -> None:
    await broker.place_order(OrderRequest(exchange="NSE", tradingsymbol="SBIN-EQ", token=SBIN, side=OrderSide.BUY,
                                          quantity=quantity, product="INTRADAY"))


async def test_an_exit_within_what_the_book_knows_asks_nothing_of_the_broker():
    broker = ModelBroker({("NSE", SBIN): PRICE})
    await buy(broker, 5)
    fetch = Counted(broker)
    book = PositionBook(fetch)
    assert await book.refresh() and fetch.calls == 1
    book.place("tg1X1", KEY, reserve=-2)
    assert await book.exitable(KEY, True, 3) == 3 and fetch.calls == 1
    assert await book.exitable(KEY, False, 1) == 0  # a short exit (a buy) of a long position: nothing
    assert fetch.calls == 2  # the book said less than asked: the broker was asked


async def test_a_book_that_cannot_say_asks_the_broker_and_snapshots_again_soon():
    broker = ModelBroker({("NSE", SBIN): PRICE})
    await buy(broker, 4)
    fetch = Counted(broker)
    book = PositionBook(fetch, resnapshot_s=0.01)
    book.place("tg1X1", KEY, reserve=-1)  # an exit of ours on its way
    assert book.held(KEY, True) is None  # no snapshot yet
    assert await book.exitable(KEY, True, 10) == 3  # the broker's 4, less the 1 on its way
    await book._refreshing  # the snapshot it scheduled for itself
    assert fetch.calls == 2 and book.held(KEY, True) is None  # our exit still works on it: not quiet
    book.settle("tg1X1")
    assert await book.refresh() and book.held(KEY, True) == 4


async def test_a_settled_order_releases_its_reservation_once_and_still_counts_a_late_fill():
    broker = ModelBroker({("NSE", SBIN): PRICE})
    await buy(broker, 6)
    book = PositionBook(broker.positions)
    await book.refresh()
    book.place("tg1X1", KEY, reserve=-4)
    book.fill("tg1X1", -1)
    assert book.held(KEY, True) == 2  # net 5, three still reserved
    book.settle("tg1X1")
    book.settle("tg1X1")
    assert book.held(KEY, True) == 5
    book.fill("tg1X1", -1)  # news of a fill after its end (a cancel racing a fill): still counted
    assert book.held(KEY, True) == 4
    assert not book.knows("tg2X1")


async def test_one_book_per_login_and_each_order_in_its_logins_book():
    own = ModelBroker({("NSE", SBIN): PRICE})
    default = ModelBroker({("NSE", SBIN): PRICE})
    await buy(own, 3)
    books = Books(lambda login: own.positions if login == "C123" else default.positions)
    assert books.book("c123") is books.book("C123") is not books.book(None)
    assert books.book("") is books.book(None)
    for book in books.books.values():
        await book.refresh()
    books.place("tg1X1", "c123", KEY, reserve=-2)
    assert books.knows("tg1X1")
    assert books.book("C123").held(KEY, True) == 1 and books.book(None).held(KEY, True) == 0
    books.fill("tg1X1", -2)
    books.settle("tg1X1")
    assert books.book("C123").held(KEY, True) == 1  # its own fill: net 1, nothing reserved
