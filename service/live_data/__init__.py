"""Paper trading on live market data (MARKET_DATA=live, paper mode).

    market-data login ─▶ MarketData (no order method; REST refuses all but login and market data)
          │ its one tick stream, shared (ticks.py): the guard holds the basis instruments of armed
          │ trades, the relay every instrument traded
          ├─▶ guard ─▶ stop engine ─▶ exits          (and the price check, exit prices, recovery's candles)
          └─▶ relay (relay.py) ─▶ the paper exchange's outside prices: it trades at them
    orders ─▶ WatchedBroker (orders.py: the instrument watched first) ─▶ the paper exchange, filled there
              at the live prices

The market-data login is built from the MARKET_DATA_* settings alone (`service.brokers`); orders go to
the paper exchange through the order logins, as in plain paper mode. The rules that keep the two apart
are in `settings.py`.
"""
from __future__ import annotations

from dataclasses import dataclass

from service.broker import Broker, MarketData
from service.broker.port import TickStream
from service.live_data.orders import WatchedBroker
from service.live_data.relay import HttpPaperPrices, LocalPaperPrices, PaperPrices, PaperRelay
from service.live_data.ticks import SharedTicks, TickHolder

__all__ = ["LiveData", "paper_on_live_data", "HttpPaperPrices", "LocalPaperPrices", "PaperPrices", "PaperRelay",
           "SharedTicks", "TickHolder", "WatchedBroker"]


@dataclass(frozen=True)
class LiveData:
    """The parts paper trading on live market data puts in place of plain paper mode's."""
    relay: PaperRelay
    guard_ticks: TickStream  # the guard's holder of the market-data stream
    broker: Broker  # the default login's orders, watched
    logins: dict[str, Broker]  # the other logins' orders, watched


def paper_on_live_data(market: MarketData, broker: Broker, logins: dict[str, Broker], paper: PaperPrices) -> LiveData:
    shared = SharedTicks(market.tick_stream())
    relay = PaperRelay(shared.holder(), paper)
    return LiveData(relay, shared.holder(), WatchedBroker(broker, relay),
                    {code: WatchedBroker(login, relay) for code, login in logins.items()})
