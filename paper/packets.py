"""SmartWebSocketV2 binary ticks: the exchangeType map and one encoder per subscription mode.

Layout (smartapi-protocol.md §3.2), little-endian, prices int64 paise:

    LTP         51 B  mode, exchangeType, token[25], sequence, exchange ts (ms), ltp
    QUOTE      123 B  + last qty, avg price, volume, total buy qty (f64), total sell qty (f64),
                        open, high, low, previous close
    SNAP_QUOTE 379 B  + last trade ts, open interest, OI change % (always 0), best five
                        (5 buys flag 1, then 5 sells flag 0; each: u16 flag, i64 qty, i64 price,
                        u16 orders), upper circuit, lower circuit, 52-week high, 52-week low
    DEPTH      443 B  mode, exchangeType, token[25], exchange ts at 27 and again at 35,
                        20 buy levels then 20 sell levels of (i32 qty, i32 price, i16 orders)

Every frame is a fresh immutable `bytes` from a precompiled `struct.Struct`: one frame is shared by
every connection subscribed to that (token, mode), so it cannot live in a reused buffer, and
`Struct.pack` builds it in the single allocation that `pack_into` + `bytes(buffer)` would cost too.
Level counts the book does not have are sent as zero levels, as an exchange does for a thin book.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from struct import Struct

from paper.quotes import Quote

__all__ = [
    "LTP", "QUOTE", "SNAP_QUOTE", "DEPTH", "MODES", "PACKET_SIZES", "EXCHANGE_TYPES", "EXCHANGE_CODES",
    "LTP_PACKET", "QUOTE_PACKET", "SNAP_QUOTE_PACKET", "DEPTH_PACKET", "ENCODERS",
    "encode", "ltp_packet", "quote_packet", "snap_quote_packet", "depth_packet",
]

LTP, QUOTE, SNAP_QUOTE, DEPTH = 1, 2, 3, 4
MODES = (LTP, QUOTE, SNAP_QUOTE, DEPTH)

# exchangeType code on the wire -> the exchange name REST and the instrument master use
EXCHANGE_TYPES: dict[int, str] = {1: "NSE", 2: "NFO", 3: "BSE", 4: "BFO", 5: "MCX", 7: "NCDEX", 13: "CDS"}
EXCHANGE_CODES: dict[str, int] = {name: code for code, name in EXCHANGE_TYPES.items()}

_HEAD = "<BB25sqqq"  # mode, exchangeType, token, sequence, exchange timestamp ms, ltp
_QUOTE_TAIL = "qqqddqqqq"  # last qty, avg price, volume, total buy, total sell, open, high, low, close
_LEVEL = "Hqqh"  # flag, qty, price, orders (the SDK reads orders unsigned; counts stay small either way)
_SNAP_TAIL = "qqq" + _LEVEL * 10 + "qqqq"  # last trade ts, OI, OI change %, best five, circuits, 52-week

LTP_PACKET = Struct(_HEAD)
QUOTE_PACKET = Struct(_HEAD + _QUOTE_TAIL)
SNAP_QUOTE_PACKET = Struct(_HEAD + _QUOTE_TAIL + _SNAP_TAIL)
DEPTH_PACKET = Struct("<BB25sqq" + "iih" * 40)

PACKET_SIZES = {LTP: LTP_PACKET.size, QUOTE: QUOTE_PACKET.size, SNAP_QUOTE: SNAP_QUOTE_PACKET.size, DEPTH: DEPTH_PACKET.size}
assert PACKET_SIZES == {LTP: 51, QUOTE: 123, SNAP_QUOTE: 379, DEPTH: 443}, PACKET_SIZES

_BUY, _SELL = 1, 0
_I16 = 0x7FFF
_I32 = 0x7FFF_FFFF
Level = tuple[int, int, int]  # (quantity, price paise, orders), best first


def _token(quote: Quote) -> bytes:
    return quote.token.encode("ascii")  # struct pads the 25-byte field with NULs


def ltp_packet(exchange_type: int, quote: Quote) -> bytes:
    return LTP_PACKET.pack(LTP, exchange_type, _token(quote), quote.sequence, quote.exchange_ts_ms, quote.ltp)


def quote_packet(exchange_type: int, quote: Quote) -> bytes:
    return QUOTE_PACKET.pack(
        QUOTE, exchange_type, _token(quote), quote.sequence, quote.exchange_ts_ms, quote.ltp,
        quote.last_qty, quote.avg_price, quote.volume, quote.total_buy_qty, quote.total_sell_qty,
        quote.open, quote.high, quote.low, quote.close,
    )


_NO_LEVEL = {_BUY: (_BUY, 0, 0, 0), _SELL: (_SELL, 0, 0, 0)}


def _best_five(levels: Sequence[Level], flag: int) -> list[int]:
    fields: list[int] = []
    extend = fields.extend
    for qty, price, orders in levels[:5]:
        extend((flag, qty, price, orders if orders <= _I16 else _I16))
    if len(fields) < 20:
        extend(_NO_LEVEL[flag] * (5 - len(fields) // 4))
    return fields


def snap_quote_packet(exchange_type: int, quote: Quote) -> bytes:
    return SNAP_QUOTE_PACKET.pack(
        SNAP_QUOTE, exchange_type, _token(quote), quote.sequence, quote.exchange_ts_ms, quote.ltp,
        quote.last_qty, quote.avg_price, quote.volume, quote.total_buy_qty, quote.total_sell_qty,
        quote.open, quote.high, quote.low, quote.close,
        quote.last_trade_ts, quote.open_interest, 0,  # OI change %: a dummy the SDK reads as int64
        *_best_five(quote.bids, _BUY), *_best_five(quote.asks, _SELL),
        quote.upper_circuit, quote.lower_circuit, quote.week52_high, quote.week52_low,
    )


def _depth_levels(levels: Sequence[Level]) -> list[int]:
    fields: list[int] = []
    extend = fields.extend
    for qty, price, orders in levels[:20]:  # i32/i32/i16 on the wire: saturate rather than fail
        extend((qty if qty <= _I32 else _I32, price if price <= _I32 else _I32, orders if orders <= _I16 else _I16))
    if len(fields) < 60:
        extend((0, 0, 0) * (20 - len(fields) // 3))
    return fields


def depth_packet(exchange_type: int, quote: Quote) -> bytes:
    # The Java SDK reads the exchange timestamp at 27, the Python SDK at 35: the same value goes in both.
    return DEPTH_PACKET.pack(
        DEPTH, exchange_type, _token(quote), quote.exchange_ts_ms, quote.exchange_ts_ms,
        *_depth_levels(quote.bids), *_depth_levels(quote.asks),
    )


Encoder = Callable[[int, Quote], bytes]
ENCODERS: dict[int, Encoder] = {LTP: ltp_packet, QUOTE: quote_packet, SNAP_QUOTE: snap_quote_packet, DEPTH: depth_packet}


def encode(mode: int, exchange_type: int, quote: Quote) -> bytes:
    """The frame for `quote` in `mode`; KeyError for a mode the protocol does not have."""
    return ENCODERS[mode](exchange_type, quote)
