"""bench._tickguard: the seeded trades are stored in one transaction, every one open, and each armed once."""
from __future__ import annotations

from collections import Counter

from bench._tickguard import seed, seeded_trades
from service.store import Store
from service.trades import TradeRecord, TradeState

INSTRUMENTS = [["NSE", "900000", "BENCH0-EQ", 50_000], ["NSE", "900001", "BENCH1-EQ", 50_200],
               ["NSE", "900002", "BENCH2-EQ", 50_400]]


class ArmingGuard:
    """What the seeding asks of the guard: `arm(trade)`, recorded."""

    def __init__(self) -> None:
        self.armed: list[TradeRecord] = []

    def arm(self, trade: TradeRecord) -> None:
        self.armed.append(trade)


async def test_seeded_trades_are_stored_in_one_transaction_and_every_one_armed(tmp_path):
    store = Store(tmp_path / "seed.db", synchronous="OFF")
    store.open()
    try:
        guard = ArmingGuard()
        commits = store.db.commits
        stored = await seed(store, guard, seeded_trades(300, INSTRUMENTS, "DEMO", now_ms=1_736_139_600_000))
        assert store.db.commits == commits + 1  # one transaction for all 300
        in_store = await store.trades(states=[TradeState.OPEN])
        assert sorted(t.id for t in in_store) == sorted(t.id for t in stored) == sorted(t.id for t in guard.armed)
        assert len(set(t.id for t in guard.armed)) == 300  # each armed once
        assert all(t.filled == 1 and t.entry_price == next(i[3] for i in INSTRUMENTS if i[1] == t.token)
                   for t in in_store)
        assert Counter(t.side for t in in_store) == {"LONG": 150, "SHORT": 150}
        assert Counter(t.token for t in in_store) == {"900000": 100, "900001": 100, "900002": 100}
    finally:
        await store.close()
