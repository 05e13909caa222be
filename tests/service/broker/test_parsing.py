"""Our tick parser against the SDK's `_parse_binary_data`, golden packets, and frames that are not ticks."""
from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.broker.smartapi.config import EXCHANGE_NAMES, EXCHANGE_TYPES
from service.broker.smartapi.parsing import (
    DEPTH,
    LTP,
    PACKET_SIZES,
    QUOTE,
    SNAP_QUOTE,
    MalformedPacket,
    decode_fields,
    parse_tick,
)
from streams import Tick

I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
U16 = st.integers(min_value=0, max_value=2**16 - 1)
I32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
I16 = st.integers(min_value=-(2**15), max_value=2**15 - 1)
F64 = st.floats(allow_nan=True, allow_infinity=True)
FLAG = st.one_of(st.sampled_from([0, 1]), U16)  # mostly the documented flags, sometimes anything
ANY_EXCHANGE_TYPE = st.integers(0, 255)
TOKEN_BYTES = st.binary(max_size=25)
ALL_MODES = (LTP, QUOTE, SNAP_QUOTE, DEPTH)


@st.composite
def packets(draw, modes=ALL_MODES, exchange_types=ANY_EXCHANGE_TYPE, tokens=TOKEN_BYTES) -> bytes:
    """A packet of the documented layout (smartapi-protocol.md §3.2), packed field by field."""
    mode = draw(st.sampled_from(modes))
    head = struct.pack("<BB25s", mode, draw(exchange_types), draw(tokens))
    if mode == DEPTH:
        ts = draw(I64)
        levels = b"".join(struct.pack("<iih", draw(I32), draw(I32), draw(I16)) for _ in range(40))
        return head + struct.pack("<qq", ts, ts) + levels
    body = struct.pack("<qqq", draw(I64), draw(I64), draw(I64))  # sequence, exchange ts, ltp
    if mode in (QUOTE, SNAP_QUOTE):
        body += struct.pack("<qqq", draw(I64), draw(I64), draw(I64))  # last qty, avg price, volume
        body += struct.pack("<dd", draw(F64), draw(F64))  # total buy qty, total sell qty
        body += struct.pack("<qqqq", draw(I64), draw(I64), draw(I64), draw(I64))  # open, high, low, close
    if mode == SNAP_QUOTE:
        body += struct.pack("<qqq", draw(I64), draw(I64), draw(I64))  # last trade ts, OI, OI change
        for _ in range(10):
            body += struct.pack("<HqqH", draw(FLAG), draw(I64), draw(I64), draw(U16))
        body += struct.pack("<qqqq", draw(I64), draw(I64), draw(I64), draw(I64))
    return head + body


def comparable(value: Any) -> Any:
    """NaN != NaN: compare floats by what they are, everything else as is."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


def tick_per_sdk(fields: dict[str, Any]) -> Tick | None:
    """The Tick the SDK's reading implies: bid/ask are its best_5 lists' first prices when > 0."""
    mode = fields["subscription_mode"]
    if mode == DEPTH:
        return None
    bid = ask = volume = None
    if mode in (QUOTE, SNAP_QUOTE):
        volume = fields["volume_trade_for_the_day"]
    if mode == SNAP_QUOTE:
        buys, sells = fields["best_5_buy_data"], fields["best_5_sell_data"]
        bid = buys[0]["price"] if buys and buys[0]["price"] > 0 else None
        ask = sells[0]["price"] if sells and sells[0]["price"] > 0 else None
    exchange = EXCHANGE_NAMES[fields["exchange_type"]]
    return Tick(fields["token"], exchange, fields["last_traded_price"], fields["exchange_timestamp"], bid, ask, volume)


@given(packets())
def test_every_field_reads_as_the_sdk_reads_it(sdk_parse, packet):
    assert comparable(decode_fields(packet)) == comparable(sdk_parse(packet))


@given(packets(exchange_types=st.sampled_from(sorted(EXCHANGE_NAMES)), tokens=st.binary(max_size=25)))
def test_tick_is_what_the_sdk_reads(sdk_parse, packet):
    assert parse_tick(packet) == tick_per_sdk(sdk_parse(packet))


@given(st.integers(0, 6), st.binary(max_size=460))
def test_arbitrary_frames_fail_where_the_sdk_fails(sdk_parse, mode, rest):
    frame = bytes([mode]) + rest
    try:
        expected = sdk_parse(frame)
    except struct.error:
        with pytest.raises(MalformedPacket):
            decode_fields(frame)
        with pytest.raises(MalformedPacket):
            parse_tick(frame)
        return
    assert comparable(decode_fields(frame)) == comparable(expected)
    if mode in (LTP, QUOTE, SNAP_QUOTE) and expected["exchange_type"] in EXCHANGE_NAMES:
        assert parse_tick(frame) == tick_per_sdk(expected)
    else:
        try:
            parse_tick(frame)
        except MalformedPacket as malformed:
            assert malformed.size == len(frame)


def _golden_snap_quote() -> bytes:
    head = struct.pack("<BB25sqqq", SNAP_QUOTE, EXCHANGE_TYPES["NFO"], b"43650", 9, 1_736_139_600_123, 12_345)
    quote = struct.pack("<qqqddqqqq", 75, 12_300, 1_050_000, 30_000.0, 28_500.0, 12_000, 12_500, 11_900, 12_100)
    snap = struct.pack("<qqq", 1_736_139_599, 880_000, 0)
    buys = [(1, 150, 12_340, 3), (1, 75, 12_335, 1), (1, 75, 12_330, 2), (1, 0, 0, 0), (1, 0, 0, 0)]
    sells = [(0, 300, 12_350, 4), (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0)]
    book = b"".join(struct.pack("<HqqH", *level) for level in buys + sells)
    return head + quote + snap + book + struct.pack("<qqqq", 13_500, 11_000, 20_000, 9_000)


GOLDEN = {
    "ltp": (
        bytes.fromhex("0101" + b"2885".hex() + "00" * 21) + struct.pack("<qqq", 17, 1_736_139_600_000, 245_035),
        Tick("2885", "NSE", 245_035, 1_736_139_600_000),
    ),
    "quote": (
        struct.pack("<BB25sqqqqqqddqqqq", QUOTE, 3, b"500325", 1, 1_736_139_600_500, 245_100, 10, 244_900, 987_654,
                    1.0, 2.0, 240_000, 246_000, 239_500, 241_000),
        Tick("500325", "BSE", 245_100, 1_736_139_600_500, volume=987_654),
    ),
    "snap_quote": (_golden_snap_quote(), Tick("43650", "NFO", 12_345, 1_736_139_600_123, 12_340, 12_350, 1_050_000)),
    "full_width_token": (
        struct.pack("<BB25sqqq", LTP, 13, b"C" * 25, 0, 5, 8_325_000_000),
        Tick("C" * 25, "CDS", 8_325_000_000, 5),
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_packets(name):
    packet, tick = GOLDEN[name]
    assert parse_tick(packet) == tick


def test_golden_snap_quote_fields(sdk_parse):
    fields = decode_fields(_golden_snap_quote())
    assert fields["best_5_buy_data"][0] == {"flag": 1, "quantity": 150, "price": 12_340, "no of orders": 3}
    assert fields["best_5_sell_data"][0] == {"flag": 0, "quantity": 300, "price": 12_350, "no of orders": 4}
    assert fields["open_interest"] == 880_000 and fields["52_week_low_price"] == 9_000
    assert fields == sdk_parse(_golden_snap_quote())


def test_empty_book_side_has_no_price():
    packet = bytearray(_golden_snap_quote())
    struct.pack_into("<HqqH", packet, 147, 1, 0, 0, 0)  # best buy level empty
    tick = parse_tick(bytes(packet))
    assert tick is not None and tick.bid is None and tick.ask == 12_350


def test_depth_packet_is_no_tick_but_decodes():
    packet = struct.pack("<BB25sqq", DEPTH, 1, b"2885", 77, 77) + struct.pack("<iih", 10, 245_000, 2) * 40
    assert parse_tick(packet) is None
    fields = decode_fields(packet)
    assert fields["exchange_timestamp"] == fields["packet_received_time"] == 77
    assert len(fields["depth_20_sell_data"]) == 20 and fields["depth_20_sell_data"][19]["price"] == 245_000


@pytest.mark.parametrize("mode", [LTP, QUOTE, SNAP_QUOTE, DEPTH])
def test_every_truncation_is_malformed(mode):
    whole = {LTP: GOLDEN["ltp"][0], QUOTE: GOLDEN["quote"][0], SNAP_QUOTE: _golden_snap_quote()}.get(mode)
    if whole is None:
        whole = struct.pack("<BB25sqq", DEPTH, 1, b"2885", 1, 1) + bytes(400)
    assert len(whole) == PACKET_SIZES[mode]
    for size in range(len(whole)):
        with pytest.raises(MalformedPacket) as raised:
            parse_tick(whole[:size])
        assert raised.value.size == size
        with pytest.raises(MalformedPacket):
            decode_fields(whole[:size])


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (bytes([9]) + bytes(60), "unknown subscription mode 9"),
        (bytes([0]) + bytes(60), "unknown subscription mode 0"),
        (struct.pack("<BB25sqqq", LTP, 6, b"1", 0, 0, 0), "unknown exchange type 6"),
        (b"pong", "shorter than a LTP packet"),
        (b"\x01pong", "shorter than a LTP packet"),
        (b"", "shorter than a LTP packet"),
    ],
)
def test_frames_that_are_not_ticks(frame, reason):
    with pytest.raises(MalformedPacket) as raised:
        parse_tick(frame)
    assert raised.value.reason == reason


def test_trailing_bytes_are_ignored():
    packet, tick = GOLDEN["ltp"]
    assert parse_tick(packet + b"\xff" * 9) == tick


def test_paper_exchange_frames_parse():
    """The paper exchange's encoders (it shares only wire constants with us) produce packets we read back."""
    from paper.packets import encode
    from paper.quotes import Quote

    quote = Quote("NSE", "2885", 245_035, 244_000, 246_000, 243_500, 244_100, 268_500, 219_700, 300_000, 200_000,
                  volume=123_456, exchange_ts_ms=1_736_139_600_000, bids=[(10, 245_030, 2)], asks=[(5, 245_040, 1)])
    expected = {
        LTP: Tick("2885", "NSE", 245_035, 1_736_139_600_000),
        QUOTE: Tick("2885", "NSE", 245_035, 1_736_139_600_000, volume=123_456),
        SNAP_QUOTE: Tick("2885", "NSE", 245_035, 1_736_139_600_000, 245_030, 245_040, 123_456),
    }
    for mode, tick in expected.items():
        assert parse_tick(encode(mode, EXCHANGE_TYPES["NSE"], quote)) == tick
    assert parse_tick(encode(DEPTH, EXCHANGE_TYPES["NSE"], quote)) is None


def test_a_flood_of_distinct_tokens_keeps_parsing_past_the_cache_limit():
    for n in range(70_000):
        token = str(n).encode()
        assert parse_tick(struct.pack("<BB25sqqq", LTP, 2, token, 0, n, n)) == Tick(str(n), "NFO", n, n)
