from __future__ import annotations

from paper.store import PaperStore


def test_rows_written_behind_come_back_on_load(tmp_path):
    store = PaperStore(tmp_path / "p.db")
    store.load()
    store.start()
    store.put_meta("signing_key", "k")
    store.put_order("P1", {"orderid": "1", "status": "open"})
    store.put_order("P1", {"orderid": "1", "status": "complete"})
    store.add_trade("P1", {"orderid": "1", "fillsize": "5"})
    store.put_candles([("NSE", "3045", 60, 1, 2, 0, 1, 10)])
    store.put_quotes([["NSE", "3045", 80000]])
    store.revoke("sid-1")
    store.close()

    state = PaperStore(tmp_path / "p.db").load()
    assert state.meta == {"signing_key": "k"}
    assert state.orders == [("P1", {"orderid": "1", "status": "complete"})]
    assert state.trades == [("P1", {"orderid": "1", "fillsize": "5"})]
    assert state.candles == [("NSE", "3045", 60, 1, 2, 0, 1, 10)]
    assert state.quotes == [["NSE", "3045", 80000]]
    assert state.revoked == {"sid-1"}


def test_flush_waits_for_the_commit_and_clear_forgets(tmp_path):
    store = PaperStore(tmp_path / "p.db")
    store.load()
    store.start()
    store.put_order("P1", {"orderid": "1"})
    store.flush()
    assert PaperStore(tmp_path / "p.db").load().orders == [("P1", {"orderid": "1"})]
    store.clear()
    store.flush()
    assert PaperStore(tmp_path / "p.db").load().orders == []
    store.close()
