"""Every tick frame decodes the same with the official SDK's parser and with the documented layout."""
from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paper.packets import (
    DEPTH, EXCHANGE_CODES, EXCHANGE_TYPES, LTP, MODES, PACKET_SIZES, QUOTE, SNAP_QUOTE, encode,
)
from paper.quotes import Quote

I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
PAISE = st.integers(min_value=0, max_value=2**62)
LEVEL = st.tuples(
    st.integers(min_value=0, max_value=2**31 - 1),  # depth-20 carries i32 quantities and prices
    st.integers(min_value=0, max_value=2**31 - 1),
    st.integers(min_value=0, max_value=2**15 - 1),
)
TOKEN = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_", min_size=1, max_size=24)


@st.composite
def quotes(draw) -> Quote:
    return Quote(
        exchange=draw(st.sampled_from(sorted(EXCHANGE_CODES))), token=draw(TOKEN),
        ltp=draw(PAISE), open=draw(PAISE), high=draw(PAISE), low=draw(PAISE), close=draw(PAISE),
        upper_circuit=draw(PAISE), lower_circuit=draw(PAISE), week52_high=draw(PAISE), week52_low=draw(PAISE),
        volume=draw(I64), last_qty=draw(I64), avg_price=draw(PAISE),
        total_buy_qty=draw(st.floats(allow_nan=False)), total_sell_qty=draw(st.floats(allow_nan=False)),
        open_interest=draw(I64), exchange_ts_ms=draw(I64), last_trade_ts=draw(I64), sequence=draw(I64),
        bids=draw(st.lists(LEVEL, max_size=20)), asks=draw(st.lists(LEVEL, max_size=20)),
    )


@pytest.fixture(scope="module")
def sdk_parse(smartapi_module):
    """`SmartWebSocketV2._parse_binary_data` on an instance built without __init__ (which writes ./logs)."""
    from SmartApi.smartWebSocketV2 import SmartWebSocketV2

    return SmartWebSocketV2.__new__(SmartWebSocketV2)._parse_binary_data


def read_documented(frame: bytes) -> dict:
    """A plain reading of smartapi-protocol.md §3.2, offset by offset, into the SDK's key names."""
    mode, exchange_type = struct.unpack_from("<BB", frame, 0)
    token = frame[2:27].split(b"\x00", 1)[0].decode("ascii")
    if mode == DEPTH:
        (received,) = struct.unpack_from("<q", frame, 35)
        levels = [struct.unpack_from("<iih", frame, 43 + 10 * n) for n in range(40)]
        as_dicts = [{"quantity": q, "price": p, "num_of_orders": o} for q, p, o in levels]
        return {
            "subscription_mode": mode, "exchange_type": exchange_type, "token": token,
            "exchange_timestamp": received, "packet_received_time": received,
            "depth_20_buy_data": as_dicts[:20], "depth_20_sell_data": as_dicts[20:],
        }
    sequence, exchange_ts, ltp = struct.unpack_from("<qqq", frame, 27)
    out = {
        "subscription_mode": mode, "exchange_type": exchange_type, "token": token, "sequence_number": sequence,
        "exchange_timestamp": exchange_ts, "last_traded_price": ltp,
        "subscription_mode_val": {LTP: "LTP", QUOTE: "QUOTE", SNAP_QUOTE: "SNAP_QUOTE"}[mode],
    }
    if mode in (QUOTE, SNAP_QUOTE):
        names = ("last_traded_quantity", "average_traded_price", "volume_trade_for_the_day", "total_buy_quantity",
                 "total_sell_quantity", "open_price_of_the_day", "high_price_of_the_day", "low_price_of_the_day",
                 "closed_price")
        out.update(zip(names, struct.unpack_from("<qqqddqqqq", frame, 51)))
    if mode == SNAP_QUOTE:
        names = ("last_traded_timestamp", "open_interest", "open_interest_change_percentage")
        out.update(zip(names, struct.unpack_from("<qqq", frame, 123)))
        packets = [struct.unpack_from("<Hqqh", frame, 147 + 20 * n) for n in range(10)]
        levels = [{"flag": f, "quantity": q, "price": p, "no of orders": o} for f, q, p, o in packets]
        out["best_5_buy_data"] = [level for level in levels if level["flag"] == 1]
        out["best_5_sell_data"] = [level for level in levels if level["flag"] == 0]
        names = ("upper_circuit_limit", "lower_circuit_limit", "52_week_high_price", "52_week_low_price")
        out.update(zip(names, struct.unpack_from("<qqqq", frame, 347)))
    return out


def expected_from(quote: Quote, mode: int) -> dict:
    """What a frame must say about `quote`, in the documented reading's terms."""
    out: dict = {"subscription_mode": mode, "exchange_type": EXCHANGE_CODES[quote.exchange], "token": quote.token}
    if mode == DEPTH:
        def levels(side):
            rows = [{"quantity": q, "price": p, "num_of_orders": o} for q, p, o in side[:20]]
            return rows + [{"quantity": 0, "price": 0, "num_of_orders": 0}] * (20 - len(rows))

        out.update(exchange_timestamp=quote.exchange_ts_ms, packet_received_time=quote.exchange_ts_ms,
                   depth_20_buy_data=levels(quote.bids), depth_20_sell_data=levels(quote.asks))
        return out
    out.update(sequence_number=quote.sequence, exchange_timestamp=quote.exchange_ts_ms, last_traded_price=quote.ltp)
    if mode in (QUOTE, SNAP_QUOTE):
        out.update(last_traded_quantity=quote.last_qty, average_traded_price=quote.avg_price,
                   volume_trade_for_the_day=quote.volume, total_buy_quantity=quote.total_buy_qty,
                   total_sell_quantity=quote.total_sell_qty, open_price_of_the_day=quote.open,
                   high_price_of_the_day=quote.high, low_price_of_the_day=quote.low, closed_price=quote.close)
    if mode == SNAP_QUOTE:
        def five(side, flag):
            rows = [{"flag": flag, "quantity": q, "price": p, "no of orders": o} for q, p, o in side[:5]]
            return rows + [{"flag": flag, "quantity": 0, "price": 0, "no of orders": 0}] * (5 - len(rows))

        out.update(last_traded_timestamp=quote.last_trade_ts, open_interest=quote.open_interest,
                   open_interest_change_percentage=0, best_5_buy_data=five(quote.bids, 1),
                   best_5_sell_data=five(quote.asks, 0), upper_circuit_limit=quote.upper_circuit,
                   lower_circuit_limit=quote.lower_circuit, **{"52_week_high_price": quote.week52_high,
                                                                "52_week_low_price": quote.week52_low})
    return out


def test_packet_sizes_are_the_documented_ones():
    assert PACKET_SIZES == {LTP: 51, QUOTE: 123, SNAP_QUOTE: 379, DEPTH: 443}


def test_exchange_type_codes_match_the_sdk(smartapi_module):
    from SmartApi.smartWebSocketV2 import SmartWebSocketV2 as V2

    sdk = {V2.NSE_CM: "NSE", V2.NSE_FO: "NFO", V2.BSE_CM: "BSE", V2.BSE_FO: "BFO", V2.MCX_FO: "MCX",
           V2.NCX_FO: "NCDEX", V2.CDE_FO: "CDS"}
    assert EXCHANGE_TYPES == sdk


@given(quote=quotes(), mode=st.sampled_from(MODES))
def test_every_frame_decodes_identically_with_the_sdk_and_the_documented_layout(sdk_parse, quote, mode):
    frame = encode(mode, EXCHANGE_CODES[quote.exchange], quote)

    assert isinstance(frame, bytes) and len(frame) == PACKET_SIZES[mode]
    documented = read_documented(frame)
    assert sdk_parse(frame) == documented
    expected = expected_from(quote, mode)
    assert {key: documented[key] for key in expected} == expected


def test_a_snap_quote_of_a_real_book_puts_bids_and_asks_where_the_sdk_expects_them(sdk_parse):
    quote = Quote("NSE", "3045", ltp=81_230, open=80_000, high=81_500, low=79_950, close=80_100,
                  upper_circuit=88_110, lower_circuit=72_090, week52_high=91_200, week52_low=60_005,
                  volume=1_234_567, last_qty=15, avg_price=80_777, total_buy_qty=91_000.0, total_sell_qty=87_500.0,
                  exchange_ts_ms=1_730_000_000_123, last_trade_ts=1_730_000_000, sequence=42,
                  bids=[(100, 81_225, 3), (250, 81_220, 5)], asks=[(70, 81_235, 1)])
    parsed = sdk_parse(encode(SNAP_QUOTE, 1, quote))

    assert parsed["last_traded_price"] / 100 == 812.30
    assert [(d["price"], d["quantity"]) for d in parsed["best_5_buy_data"]][:2] == [(81_225, 100), (81_220, 250)]
    assert [(d["price"], d["no of orders"]) for d in parsed["best_5_sell_data"]][:1] == [(81_235, 1)]
    assert len(parsed["best_5_buy_data"]) == len(parsed["best_5_sell_data"]) == 5
    assert math.isclose(parsed["total_buy_quantity"], 91_000.0)


def test_unknown_mode_is_refused():
    quote = Quote("NSE", "3045", 1, 1, 1, 1, 1, 0, 0, 1, 1)
    with pytest.raises(KeyError):
        encode(5, 1, quote)
