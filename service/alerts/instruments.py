"""The instrument an alert trades: its symbol resolved from the symbol book (an equity or future by
its ticker, an option contract named in the alert or picked from its underlying's price)."""
from __future__ import annotations

from service.alerts.parse import Alert, AlertInvalid
from service.alerts.plan import names_contract
from service.symbols import Symbol, SymbolBook, SymbolError

__all__ = ["resolve_instrument", "ticker"]


def ticker(symbolname: str, exchange: str | None) -> str:
    """The ticker to resolve: `exchange` prefixed unless the symbol carries its own (`NSE:SBIN`), which
    must then agree with it."""
    prefix, sep, _ = symbolname.partition(":")
    if not exchange:
        return symbolname
    if not sep:
        return f"{exchange}:{symbolname}"
    if prefix.strip().upper() != exchange:
        raise AlertInvalid([{"field": "exchange", "reason": f"{exchange} disagrees with the symbol's own {prefix}"}])
    return symbolname


async def resolve_instrument(alert: Alert, symbols: SymbolBook) -> tuple[Symbol, Symbol | None]:
    """(the symbol to trade, its underlying for an option or None); `AlertInvalid` naming `symbolname`
    when the symbol book has no such instrument."""
    try:
        if alert.type == "option":
            return await _option_symbol(alert, symbols)
        return await symbols.equity(ticker(alert.symbolname, alert.exchange)), None
    except SymbolError as exc:
        raise AlertInvalid([{"field": "symbolname", "reason": exc.reason}]) from None


async def _option_symbol(alert: Alert, symbols: SymbolBook) -> tuple[Symbol, Symbol]:
    """The contract to buy and its underlying: a contract named in the alert, or one picked from the
    underlying's price — a call for buy, a put for sell (or the alert's `option.right`)."""
    name = alert.symbolname.split(":", 1)[-1].upper()
    if names_contract(alert.symbolname):
        contract = await symbols.contract(name)
        return contract, await symbols.equity(contract.name, search=False)
    spec = alert.option
    right = (spec.right if spec and spec.right else None) or ("PE" if alert.signal.value == "sell" and not alert.chartink_word
                                                              else "CE")
    if alert.chartink_word and alert.signal.value == "sell":  # `short` an underlying: buy the put
        right = "PE"
    underlying = await symbols.equity(name, search=False)  # an option chain comes from the master only
    contract = await symbols.option(name, price=int(alert.price * 100), right=right,
                                    strike=spec.strike if spec else "ATM", expiry=spec.expiry if spec else "current")
    return contract, underlying
