"""Market-data routes: LTP, quotes (LTP/OHLC/FULL), candles and scrip search."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response

from paper.envelopes import BadRequest, fail, ok
from paper.instruments import Instrument
from paper.quotes import Quote

if TYPE_CHECKING:
    from paper.auth import Session
    from paper.exchange import PaperExchange

__all__ = ["ltp_data", "quote", "candle_data", "search_scrip", "INTERVAL_MAX_DAYS"]

INTERVAL_MAX_DAYS = {
    "ONE_MINUTE": 30, "THREE_MINUTE": 60, "FIVE_MINUTE": 100, "TEN_MINUTE": 100,
    "FIFTEEN_MINUTE": 200, "THIRTY_MINUTE": 200, "ONE_HOUR": 400, "ONE_DAY": 2000,
}
QUOTE_MODES = ("LTP", "OHLC", "FULL")
MAX_QUOTE_TOKENS = 50
IST = ZoneInfo("Asia/Kolkata")


def rupees(paise: int) -> float:
    return round(paise / 100, 2)


def _instrument(ex: PaperExchange, exchange: Any, token: Any) -> Instrument:
    if not token or not str(token).strip():
        raise BadRequest("Symbol token cannot be empty")
    instrument = ex.universe.by_token(str(exchange or ""), str(token).strip())
    if instrument is None:
        raise LookupError(f"Symbol not found: {exchange} {token}")
    return instrument


async def ltp_data(request: Request, ex: PaperExchange, session: Session | None, body: dict[str, Any]) -> Response:
    try:
        instrument = _instrument(ex, body.get("exchange"), body.get("symboltoken"))
    except LookupError:
        return fail("AB1009", "Symbol Not Found")
    q = ex.prices.quote(instrument.exchange, instrument.token)
    return ok({
        "exchange": instrument.exchange,
        "tradingsymbol": instrument.symbol,
        "symboltoken": instrument.token,
        "open": rupees(q.open), "high": rupees(q.high), "low": rupees(q.low), "close": rupees(q.close),
        "ltp": rupees(q.ltp),
    })


def _quote_row(mode: str, instrument: Instrument, q: Quote) -> dict[str, Any]:
    row: dict[str, Any] = {
        "exchange": instrument.exchange, "tradingSymbol": instrument.symbol,
        "symbolToken": instrument.token, "ltp": rupees(q.ltp),
    }
    if mode in ("OHLC", "FULL"):
        row.update(open=rupees(q.open), high=rupees(q.high), low=rupees(q.low), close=rupees(q.close))
    if mode == "FULL":
        stamp = datetime.fromtimestamp(q.exchange_ts_ms / 1000, IST).strftime("%d-%b-%Y %H:%M:%S") if q.exchange_ts_ms else ""
        change = q.ltp - q.close
        row.update(
            lastTradeQty=q.last_qty, exchFeedTime=stamp, exchTradeTime=stamp,
            netChange=rupees(change), percentChange=round(change / q.close * 100, 2) if q.close else 0,
            avgPrice=rupees(q.avg_price), tradeVolume=q.volume, opnInterest=q.open_interest,
            lowerCircuit=rupees(q.lower_circuit), upperCircuit=rupees(q.upper_circuit),
            totBuyQuan=int(q.total_buy_qty), totSellQuan=int(q.total_sell_qty),
            **{"52WeekLow": rupees(q.week52_low), "52WeekHigh": rupees(q.week52_high)},
            depth={
                "buy": [{"price": rupees(p), "quantity": n, "orders": o} for n, p, o in q.bids],
                "sell": [{"price": rupees(p), "quantity": n, "orders": o} for n, p, o in q.asks],
            },
        )
    return row


async def quote(request: Request, ex: PaperExchange, session: Session | None, body: dict[str, Any]) -> Response:
    mode = str(body.get("mode", "")).upper()
    if mode not in QUOTE_MODES:
        raise BadRequest(f"mode must be one of {', '.join(QUOTE_MODES)}")
    tokens = body.get("exchangeTokens")
    if not isinstance(tokens, dict) or not tokens:
        raise BadRequest("exchangeTokens must map an exchange to a list of tokens")
    pairs = []
    for exchange, listed in tokens.items():
        if not isinstance(listed, list):
            raise BadRequest(f"exchangeTokens.{exchange} must be a list of tokens")
        pairs.extend((str(exchange).upper(), str(t)) for t in listed)
    if len(pairs) > MAX_QUOTE_TOKENS:
        raise BadRequest(f"at most {MAX_QUOTE_TOKENS} tokens per request")
    fetched, unfetched = [], []
    for exchange, token in pairs:
        instrument = ex.universe.by_token(exchange, token) if token.strip() else None
        if instrument is None:
            message, code = ("Symbol token cannot be empty", "AB4018") if not token.strip() else ("Symbol Not Found", "AB1009")
            unfetched.append({"exchange": exchange, "symbolToken": token, "message": message, "errorCode": code})
            continue
        fetched.append(_quote_row(mode, instrument, ex.prices.quote(exchange, token)))
    return ok({"fetched": fetched, "unfetched": unfetched})


def _parse_when(body: dict[str, Any], name: str) -> datetime:
    value = str(body.get(name, ""))
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M").replace(tzinfo=IST)
    except ValueError:
        raise BadRequest(f"{name} must be yyyy-MM-dd HH:mm, got {value!r}") from None


async def candle_data(request: Request, ex: PaperExchange, session: Session | None, body: dict[str, Any]) -> Response:
    interval = str(body.get("interval", "")).upper()
    if interval not in INTERVAL_MAX_DAYS:
        raise BadRequest(f"interval must be one of {', '.join(INTERVAL_MAX_DAYS)}")
    start, end = _parse_when(body, "fromdate"), _parse_when(body, "todate")
    if end < start:
        raise BadRequest("todate is before fromdate")
    if end - start > timedelta(days=INTERVAL_MAX_DAYS[interval]):
        raise BadRequest(f"{interval} allows at most {INTERVAL_MAX_DAYS[interval]} days per request")
    try:
        instrument = _instrument(ex, body.get("exchange"), body.get("symboltoken"))
    except LookupError:
        return fail("AB1009", "Symbol Not Found")
    rows = ex.prices.candles(instrument.exchange, instrument.token, interval, start, end)
    return ok(rows)


async def search_scrip(request: Request, ex: PaperExchange, session: Session | None, body: dict[str, Any]) -> Response:
    exchange = str(body.get("exchange", "")).upper()
    text = str(body.get("searchscrip", "")).strip()
    if not exchange or not text:
        raise BadRequest("exchange and searchscrip are required")
    hits = ex.universe.search(exchange, text)
    data = [{"exchange": i.exchange, "tradingsymbol": i.symbol, "symboltoken": i.token} for i in hits]
    return ok(data)
