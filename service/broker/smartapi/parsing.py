"""smart-stream binary ticks to `Tick` values (smartapi-protocol.md §3.2), little-endian, prices paise.

    LTP         51 B  mode, exchangeType, token[25], sequence, exchange ts (ms), ltp
    QUOTE      123 B  + last qty, avg price, volume, total buy/sell qty (f64), open, high, low, close
    SNAP_QUOTE 379 B  + last trade ts, OI, OI change %, best five (10 x u16 flag, i64 qty, i64 price,
                        u16 orders; flag 1 = buy, 0 = sell), circuits, 52-week high/low
    DEPTH      443 B  header, then 20 buy and 20 sell levels of (i32 qty, i32 price, i16 orders)

`parse_tick` is the hot path: precompiled `Struct.unpack_from`s (one for LTP, two for QUOTE and
SNAP_QUOTE) that read only the fields a `Tick` carries, a cache from the mode + exchangeType + token
bytes to (token, exchange), no per-tick dict; the Tick is the only allocation that outlives the call.
`decode_fields` is the full reading, key for key and quirk for quirk the SDK's
`SmartWebSocketV2._parse_binary_data` (its best-five buy list is the packets whose flag is not 0, the
OI change % is read as int64, DEPTH drops the sequence and LTP); it exists to prove the hot path
against the SDK and is not used per tick.
"""
from __future__ import annotations

from struct import Struct
from struct import error as StructError
from typing import Any

from service.broker.errors import BrokerError
from service.broker.smartapi.config import EXCHANGE_NAMES
from streams import Tick

__all__ = [
    "DEPTH",
    "LTP",
    "MODE_NAMES",
    "PACKET_SIZES",
    "QUOTE",
    "SNAP_QUOTE",
    "MalformedPacket",
    "decode_fields",
    "parse_tick",
]

LTP, QUOTE, SNAP_QUOTE, DEPTH = 1, 2, 3, 4
MODE_NAMES = {LTP: "LTP", QUOTE: "QUOTE", SNAP_QUOTE: "SNAP_QUOTE", DEPTH: "DEPTH"}
PACKET_SIZES = {LTP: 51, QUOTE: 123, SNAP_QUOTE: 379, DEPTH: 443}

# exchangeType byte -> REST exchange name (None: a code the protocol does not have)
_EXCHANGES: tuple[str | None, ...] = tuple(EXCHANGE_NAMES.get(code) for code in range(256))

# Hot-path readers (x = bytes not read). Every packet starts with the LTP layout, read in one unpack
# with the mode byte, the exchangeType byte and the token as one 27-byte key into an instrument
# cache; QUOTE and SNAP_QUOTE add one more unpack that reads to the mode's full size, so truncation
# fails inside it. LTP keys have a cache of their own: a hit there is a LTP packet, no mode test.
_TICK_HEAD = Struct("<27s8xqq")  # mode + exchangeType + token, (sequence), exchange ts, ltp
_QUOTE_MORE = Struct("<67xq48x")  # volume @67
_SNAP_MORE = Struct("<67xq72x" + "H8xq2x" * 10 + "32x")  # volume, (flag, price) of the ten best-five packets
_DEPTH_SIZE = Struct("<443x")
_unpack_head = _TICK_HEAD.unpack_from
_unpack_quote = _QUOTE_MORE.unpack_from
_unpack_snap = _SNAP_MORE.unpack_from
_check_depth = _DEPTH_SIZE.unpack_from
assert (_TICK_HEAD.size, _QUOTE_MORE.size, _SNAP_MORE.size) == (51, 123, 379)

_CACHE_LIMIT = 65_536  # a feed of garbage tokens cannot grow a cache without bound
_ltp_instruments: dict[bytes, tuple[str, str]] = {}  # LTP key -> (token, exchange)
_instruments: dict[bytes, tuple[str, str]] = {}  # QUOTE and SNAP_QUOTE keys -> (token, exchange)
_cached_ltp = _ltp_instruments.get


class MalformedPacket(BrokerError):
    """A frame that is not a tick packet: too short, unknown mode or exchange. Dropped and reported."""

    def __init__(self, reason: str, size: int) -> None:
        super().__init__(f"malformed tick packet ({size} B): {reason}")
        self.reason = reason
        self.size = size


def _new_instrument(cache: dict[bytes, tuple[str, str]], key: bytes, size: int) -> tuple[str, str]:
    exchange = _EXCHANGES[key[1]]
    if exchange is None:
        raise MalformedPacket(f"unknown exchange type {key[1]}", size)
    # The SDK takes chr() of each byte up to the first NUL: latin-1, which never fails.
    instrument = key[2:].split(b"\x00", 1)[0].decode("latin-1"), exchange
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = instrument
    return instrument


def _best(values: tuple[int, ...], buy: bool) -> int | None:
    """Price of the first best-five packet on that side (the SDK's `best_5_*_data[0]`); None if empty."""
    for n in range(1, 21, 2):  # values[1:21]: (flag, price) of the ten packets
        if (values[n] != 0) is buy:
            price = values[n + 1]
            return price if price > 0 else None
    return None


def parse_tick(packet: bytes) -> Tick | None:
    """The `Tick` in a LTP/QUOTE/SNAP_QUOTE packet; None for DEPTH (it carries no LTP).

    bid/ask: SNAP_QUOTE's best buy/sell price (None when that level is empty); volume: QUOTE and up.
    Raises `MalformedPacket` for anything else; trailing bytes past the mode's size are ignored.
    """
    try:
        key, ts, ltp = _unpack_head(packet)
    except StructError:
        raise MalformedPacket("shorter than a LTP packet", len(packet)) from None
    instrument = _cached_ltp(key)
    if instrument is not None:  # the common case: one unpack, one dict hit and the Tick
        token, exchange = instrument
        return Tick(token, exchange, ltp, ts)
    return _parse_other(packet, key, ts, ltp)


def _parse_other(packet: bytes, key: bytes, ts: int, ltp: int) -> Tick | None:
    mode = key[0]
    if mode == 1:
        token, exchange = _new_instrument(_ltp_instruments, key, len(packet))
        return Tick(token, exchange, ltp, ts)
    try:
        if mode == 2:
            (volume,) = _unpack_quote(packet)
            bid = ask = None
        elif mode == 3:
            v = _unpack_snap(packet)
            volume = v[0]
            if v[1] and v[3] and v[5] and v[7] and v[9] and not v[11]:
                bid = v[2] if v[2] > 0 else None  # the documented layout: five buys (flag 1), then five sells
                ask = v[12] if v[12] > 0 else None
            else:
                bid, ask = _best(v, True), _best(v, False)
        elif mode == 4:
            _check_depth(packet)
            return None
        else:
            raise MalformedPacket(f"unknown subscription mode {mode}", len(packet))
    except StructError:
        raise MalformedPacket(f"truncated {MODE_NAMES[mode]} packet", len(packet)) from None
    token, exchange = _instruments.get(key) or _new_instrument(_instruments, key, len(packet))
    return Tick(token, exchange, ltp, ts, bid, ask, volume)


# -- the full reading, for the property test against the SDK --------------------------------------

_HEAD = Struct("<BB25sqqq")
_QUOTE_TAIL = Struct("<qqqddqqqq")
_SNAP_HEAD = Struct("<qqq")
_BEST_FIVE = Struct("<HqqH")
_SNAP_TAIL = Struct("<qqqq")
_DEPTH_LEVEL = Struct("<iih")
_QUOTE_KEYS = (
    "last_traded_quantity", "average_traded_price", "volume_trade_for_the_day", "total_buy_quantity",
    "total_sell_quantity", "open_price_of_the_day", "high_price_of_the_day", "low_price_of_the_day",
    "closed_price",
)
_SNAP_KEYS = ("last_traded_timestamp", "open_interest", "open_interest_change_percentage")
_LIMIT_KEYS = ("upper_circuit_limit", "lower_circuit_limit", "52_week_high_price", "52_week_low_price")


def _unpack(layout: Struct, packet: bytes, offset: int) -> tuple[Any, ...]:
    try:
        return layout.unpack_from(packet, offset)
    except StructError:
        raise MalformedPacket(f"truncated at byte {offset}", len(packet)) from None


def _best_five(packet: bytes) -> tuple[list[dict[str, int]], list[dict[str, int]]]:
    buys: list[dict[str, int]] = []
    sells: list[dict[str, int]] = []
    for n in range(10):
        flag, quantity, price, orders = _unpack(_BEST_FIVE, packet, 147 + 20 * n)
        level = {"flag": flag, "quantity": quantity, "price": price, "no of orders": orders}
        (sells if flag == 0 else buys).append(level)
    return buys, sells


def _depth(packet: bytes, start: int) -> list[dict[str, int]]:
    levels = (_unpack(_DEPTH_LEVEL, packet, start + 10 * n) for n in range(20))
    return [{"quantity": q, "price": p, "num_of_orders": o} for q, p, o in levels]


def decode_fields(packet: bytes) -> dict[str, Any]:
    """Every field, under the SDK's keys, as `_parse_binary_data` reports it. Raises `MalformedPacket`
    exactly where the SDK raises (a packet shorter than its mode reads)."""
    mode, etype, raw, sequence, exchange_ts, ltp = _unpack(_HEAD, packet, 0)
    fields: dict[str, Any] = {
        "subscription_mode": mode, "exchange_type": etype, "token": raw.split(b"\x00", 1)[0].decode("latin-1"),
        "sequence_number": sequence, "exchange_timestamp": exchange_ts, "last_traded_price": ltp,
        "subscription_mode_val": MODE_NAMES.get(mode),
    }
    if mode in (QUOTE, SNAP_QUOTE):
        fields.update(zip(_QUOTE_KEYS, _unpack(_QUOTE_TAIL, packet, 51)))
    if mode == SNAP_QUOTE:
        fields.update(zip(_SNAP_KEYS, _unpack(_SNAP_HEAD, packet, 123)))
        fields.update(zip(_LIMIT_KEYS, _unpack(_SNAP_TAIL, packet, 347)))
        fields["best_5_buy_data"], fields["best_5_sell_data"] = _best_five(packet)
    if mode == DEPTH:
        del fields["sequence_number"], fields["last_traded_price"], fields["subscription_mode_val"]
        fields["packet_received_time"] = exchange_ts
        fields["depth_20_buy_data"] = _depth(packet, 43)
        fields["depth_20_sell_data"] = _depth(packet, 243)
    return fields
