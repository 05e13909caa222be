from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_CEILING, Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from paper.errors import OrderError
from paper.positions import Fill, fold, margin, pending_margin
from tests.paper.test_orders import (  # noqa: F401 — fixtures
    NIFTY_CE,
    NIFTY_FUT,
    SBIN,
    START_LTP,
    UNIVERSE,
    Desk,
    desk,
    desk_factory,
    make_desk,
    modify_params,
)


def fill(side: str, price: int, quantity: int, product: str = "INTRADAY") -> Fill:
    return Fill("P0001", "1", "1", "NSE", "3045", "SBIN-EQ", product, side, price, quantity, "10:00:00")


# The fold -----------------------------------------------------------------------------------------------
def test_day_position_pnl_realised_and_unrealised_by_hand(desk):
    desk.place(SBIN, quantity="10")  # 10 @ 800
    desk.move(SBIN, 82_000)
    desk.place(SBIN, transactiontype="SELL", quantity="4")  # 4 @ 820
    desk.move(SBIN, 81_000)
    [row] = desk.engine.positions(desk.client)
    assert {k: row[k] for k in ("buyqty", "sellqty", "buyamount", "sellamount", "netqty", "buyavgprice",
                                "sellavgprice", "netvalue", "avgnetprice", "ltp", "pnl", "realised", "unrealised")} == {
        "buyqty": "10", "sellqty": "4", "buyamount": "8000.00", "sellamount": "3280.00", "netqty": "6",
        "buyavgprice": "800.00", "sellavgprice": "820.00", "netvalue": "-4720.00", "avgnetprice": "786.67",
        "ltp": "810.00", "pnl": "140.00", "realised": "80.00", "unrealised": "60.00",
    }
    assert all(isinstance(value, str) for value in row.values())


def test_short_then_covered_is_flat_with_everything_realised(desk):
    desk.place(SBIN, transactiontype="SELL", quantity="5")  # 5 @ 800
    desk.move(SBIN, 79_000)
    desk.place(SBIN, quantity="5")  # 5 @ 790
    [row] = desk.engine.positions(desk.client)
    assert (row["netqty"], row["pnl"], row["realised"], row["unrealised"]) == ("0", "50.00", "50.00", "0.00")
    assert desk.rms()["availablecash"] == "1000050.0000" and desk.rms()["m2mrealized"] == "50.0000"


def test_realised_is_rounded_to_the_paisa_and_unrealised_takes_the_rest():
    position = fold([fill("BUY", 10_005, 1), fill("BUY", 10_010, 2), fill("SELL", 10_000, 1)])[
        ("P0001", "NSE", "3045", "INTRADAY")]
    # buy average 100.0833…; one share closed at 100.00 → realised −0.0833… → −0.08
    assert position.realised() == -8
    assert position.pnl(10_100) == 10_000 - 30_025 + 2 * 10_100
    assert position.realised() + position.unrealised(10_100) == position.pnl(10_100)


def test_positions_are_kept_per_product(desk):
    desk.place(SBIN, quantity="2")
    desk.place(SBIN, producttype="DELIVERY", quantity="3")
    assert sorted((r["producttype"], r["netqty"]) for r in desk.engine.positions(desk.client)) == [
        ("DELIVERY", "3"), ("INTRADAY", "2")]


def test_holdings_are_the_delivery_longs(desk):
    desk.place(SBIN, quantity="2")
    desk.place(SBIN, producttype="DELIVERY", quantity="3")
    desk.move(SBIN, 81_000)
    [holding] = desk.engine.holdings(desk.client)
    assert {k: holding[k] for k in ("tradingsymbol", "quantity", "t1quantity", "averageprice", "ltp",
                                    "profitandloss", "pnlpercentage", "product")} == {
        "tradingsymbol": "SBIN-EQ", "quantity": 3, "t1quantity": 3, "averageprice": 800.0, "ltp": 810.0,
        "profitandloss": 30.0, "pnlpercentage": 1.25, "product": "DELIVERY"}
    desk.place(SBIN, producttype="DELIVERY", transactiontype="SELL", quantity="3")
    assert desk.engine.holdings(desk.client) == []


# Margins ------------------------------------------------------------------------------------------------
def test_margin_rates_per_segment_and_side():
    assert margin(SBIN, "INTRADAY", 10, 80_000) == ("exposure", 160_000)
    assert margin(SBIN, "DELIVERY", -10, 80_000) == ("exposure", 800_000)
    assert margin(NIFTY_CE, "CARRYFORWARD", 75, 12_000) == ("optionpremium", 900_000)
    assert margin(NIFTY_CE, "CARRYFORWARD", -75, 12_000) == ("span", 27_000_000)  # 15 % of 75 × 24000
    assert margin(NIFTY_FUT, "INTRADAY", -75, 2_410_000) == ("span", 27_112_500)
    assert margin(SBIN, "INTRADAY", 1, 5) == ("exposure", 1)  # rounded up to the paisa


def test_pending_orders_pay_only_for_what_they_would_open():
    closing_sells = [("SELL", 6, 81_000), ("SELL", 4, 82_000)]
    assert pending_margin(SBIN, "INTRADAY", 10, closing_sells) == {"exposure": 0, "optionpremium": 0, "span": 0}
    flipping = [("SELL", 6, 81_000), ("SELL", 7, 82_000)]  # 3 of the second would open a short
    assert pending_margin(SBIN, "INTRADAY", 10, flipping)["exposure"] == 49_200
    assert pending_margin(SBIN, "INTRADAY", -2, [("BUY", 5, 80_000)])["exposure"] == 48_000


def test_rms_by_hand_with_a_position_and_pending_orders(desk):
    desk.place(SBIN, quantity="10")  # 10 @ 800, intraday
    desk.move(SBIN, 81_000)
    desk.place(SBIN, transactiontype="SELL", ordertype="LIMIT", price="850", quantity="10")  # closes: free
    desk.place(NIFTY_CE, ordertype="LIMIT", price="110", quantity="75")  # rests, blocks 100 % premium
    rms = desk.rms()
    assert rms == {
        "net": "990230.0000", "availablecash": "1000000.0000", "availableintradaypayin": "0.0000",
        "availablelimitmargin": "990230.0000", "collateral": "0.0000", "m2munrealized": "100.0000",
        "m2mrealized": "0.0000", "utiliseddebits": "9870.0000", "utilisedspan": "0.0000",
        "utilisedoptionpremium": "8250.0000", "utilisedholdingsales": "0.0000", "utilisedexposure": "1620.0000",
        "utilisedturnover": "0.0000", "utilisedpayout": "0.0000",
    }  # net = 1000000 + 100 − (20 % × 10 × 810 + 75 × 110)


def test_an_option_buy_costs_its_premium_and_marks_to_market(desk):
    desk.place(NIFTY_CE, quantity="75")  # 75 @ 120 = 9000
    assert desk.rms()["net"] == "991000.0000"
    desk.move(NIFTY_CE, 6_000)
    assert desk.rms()["net"] == "991000.0000"  # −4500 unrealised, premium block down by 4500
    assert desk.rms()["m2munrealized"] == "-4500.0000"


def test_a_closing_order_needs_no_funds(desk_factory):
    desk = desk_factory(cash_rupees=2_000)
    desk.place(SBIN, quantity="10")  # blocks 1600 of 2000
    desk.move(SBIN, 75_000)  # −500: net is now 2000 − 500 − 1500 = 0
    assert desk.rms()["net"] == "0.0000"
    assert desk.place(SBIN, transactiontype="SELL", quantity="10").status == "complete"
    assert desk.rms()["availablecash"] == "1500.0000"  # the 500 loss is realised
    assert desk.place(SBIN, quantity="11").status == "rejected"  # 20 % of 11 × 750 = 1650 > 1500
    assert desk.place(SBIN, quantity="10").status == "complete"


# Property: the books agree after any sequence --------------------------------------------------------------
INSTRUMENTS = (SBIN, NIFTY_CE, NIFTY_FUT)
RATE = {"equity_intraday": Decimal("0.20"), "equity_other": Decimal("1"), "option_long": Decimal("1"),
        "option_short": Decimal("0.15"), "future": Decimal("0.15")}

place_step = st.fixed_dictionaries({
    "op": st.just("place"), "instrument": st.sampled_from(INSTRUMENTS), "side": st.sampled_from(["BUY", "SELL"]),
    "ordertype": st.sampled_from(["MARKET", "LIMIT", "STOPLOSS_LIMIT", "STOPLOSS_MARKET"]),
    "product": st.sampled_from(["INTRADAY", "DELIVERY"]), "lots": st.integers(1, 4), "offset": st.integers(-6, 6),
    "gap": st.integers(0, 3), "ioc": st.booleans(),
    "fault": st.sampled_from([None, None, None, "partial", "open", "reject"]),
})
modify_step = st.fixed_dictionaries({"op": st.just("modify"), "pick": st.integers(0, 50), "lots": st.integers(1, 5),
                                      "offset": st.integers(-6, 6)})
cancel_step = st.fixed_dictionaries({"op": st.just("cancel"), "pick": st.integers(0, 50)})
move_step = st.fixed_dictionaries({"op": st.just("move"), "instrument": st.sampled_from(INSTRUMENTS),
                                    "ticks": st.integers(-40, 40)})
steps = st.lists(st.one_of(place_step, modify_step, cancel_step, move_step, move_step), min_size=4, max_size=30)


def run(desk: Desk, step: dict[str, Any]) -> None:
    engine = desk.engine
    if step["op"] == "move":
        instrument = step["instrument"]
        ltp = START_LTP[instrument] + step["ticks"] * instrument.tick_paise * 4
        desk.move(instrument, ltp)
    elif step["op"] == "place":
        place(desk, step)
    else:
        live = [r for r in engine.order_book(desk.client) if r["status"] in ("open", "trigger pending")]
        if not live:
            return
        row = live[step["pick"] % len(live)]
        order = engine.order(row["orderid"])
        try:
            if step["op"] == "cancel":
                engine.cancel(desk.client, order.orderid, order.variety)
            else:
                ltp = desk.prices.quote(order.exchange, order.symboltoken).ltp
                lot = UNIVERSE.by_token(order.exchange, order.symboltoken).lotsize
                price = ltp + step["offset"] * 4 * UNIVERSE.by_token(order.exchange, order.symboltoken).tick_paise
                engine.modify(desk.client, modify_params(order, quantity=str(step["lots"] * lot),
                                                         price=f"{price / 100:.2f}", triggerprice=f"{price / 100:.2f}"))
        except OrderError:
            pass  # a modify below the filled quantity or beyond the funds: refused, nothing changes


def place(desk: Desk, step: dict[str, Any]) -> None:
    instrument = step["instrument"]
    ltp = desk.prices.quote(instrument.exchange, instrument.token).ltp
    tick = instrument.tick_paise
    price = ltp + step["offset"] * tick * 4
    stop = step["ordertype"].startswith("STOPLOSS")
    trigger = price - step["gap"] * tick if step["side"] == "BUY" else price + step["gap"] * tick
    product = step["product"] if not instrument.is_derivative else {"DELIVERY": "CARRYFORWARD"}.get(step["product"], "INTRADAY")
    if step["fault"] is not None:
        desk.engine.faults.arm(step["fault"], fraction=0.5)
    desk.place(instrument, transactiontype=step["side"], ordertype=step["ordertype"], producttype=product,
               variety="STOPLOSS" if stop else "NORMAL", quantity=str(step["lots"] * instrument.lotsize),
               price=f"{price / 100:.2f}", triggerprice=f"{trigger / 100:.2f}", duration="IOC" if step["ioc"] else "DAY")
    desk.engine.faults.clear()


def check_books(desk: Desk) -> None:
    orders = {r["orderid"]: r for r in desk.engine.order_book(desk.client)}
    trades = desk.engine.trade_book(desk.client)
    positions = desk.engine.positions(desk.client)
    # (a) every fill belongs to an order that traded, and an order's fills sum to its filledshares
    filled: dict[str, int] = defaultdict(int)
    for trade in trades:
        filled[trade["orderid"]] += int(trade["fillsize"])
    for orderid, row in orders.items():
        assert filled.get(orderid, 0) == int(row["filledshares"])
        assert int(row["filledshares"]) + int(row["unfilledshares"]) == int(row["quantity"])
        assert row["status"] != "open pending"
        if filled.get(orderid):
            assert row["status"] in ("complete", "open", "cancelled")
        if row["status"] == "complete":
            assert row["unfilledshares"] == "0"
        if row["status"] == "cancelled":
            assert int(row["cancelsize"]) == int(row["unfilledshares"])
    # (b) positions are a naive fold of the trade book
    naive: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
    for trade in trades:
        sums = naive[(trade["tradingsymbol"], trade["producttype"])]
        side = 0 if trade["transactiontype"] == "BUY" else 2
        sums[side] += int(trade["fillsize"])
        sums[side + 1] += Decimal(trade["fillprice"]) * int(trade["fillsize"])
    assert {(p["tradingsymbol"], p["producttype"]): [Decimal(p[k]) for k in ("buyqty", "buyamount", "sellqty", "sellamount")]
            for p in positions} == naive
    for p in positions:
        assert int(p["netqty"]) == int(p["buyqty"]) - int(p["sellqty"])
        # (d) realised + unrealised = pnl = sellamount − buyamount + netqty × ltp
        assert Decimal(p["realised"]) + Decimal(p["unrealised"]) == Decimal(p["pnl"])
        assert Decimal(p["pnl"]) == Decimal(p["sellamount"]) - Decimal(p["buyamount"]) + int(p["netqty"]) * Decimal(p["ltp"])
    # (c) RMS is the documented formula, recomputed from the position rows and the working orders
    assert desk.rms() == reference_rms(desk, positions, [r for r in orders.values() if r["status"] in ("open", "trigger pending")])


def reference_margin(symbol: str, product: str, quantity: int, price: Decimal) -> tuple[str, Decimal]:
    instrument = UNIVERSE.by_symbol("NFO" if symbol.startswith("NIFTY") else "NSE", symbol)
    if instrument.is_option:
        if quantity >= 0:
            return "premium", RATE["option_long"] * quantity * price
        return "span", RATE["option_short"] * -quantity * Decimal(instrument.strike_paise) / 100
    if instrument.is_derivative:
        return "span", RATE["future"] * abs(quantity) * price
    return "exposure", RATE["equity_intraday" if product == "INTRADAY" else "equity_other"] * abs(quantity) * price


def reference_rms(desk: Desk, positions: list[dict[str, str]], working: list[dict[str, Any]]) -> dict[str, str]:
    def up(value: Decimal) -> Decimal:
        return value.quantize(Decimal("0.01"), rounding=ROUND_CEILING)

    used = {"exposure": Decimal(0), "premium": Decimal(0), "span": Decimal(0)}
    net_by_key: dict[tuple[str, str], int] = {}
    for p in positions:
        category, amount = reference_margin(p["tradingsymbol"], p["producttype"], int(p["netqty"]), Decimal(p["ltp"]))
        used[category] += up(amount)
        net_by_key[(p["tradingsymbol"], p["producttype"])] = int(p["netqty"])
    capacity = {key: [max(n, 0), max(-n, 0)] for key, n in net_by_key.items()}  # [long left, short left]
    for row in sorted(working, key=lambda r: r["orderid"]):
        key = (row["tradingsymbol"], row["producttype"])
        left = capacity.setdefault(key, [0, 0])
        unfilled = int(row["unfilledshares"])
        side = 1 if row["transactiontype"] == "BUY" else 0  # a buy reduces a short, a sell a long
        reducing = min(unfilled, left[side])
        left[side] -= reducing
        opening = unfilled - reducing
        price = {"LIMIT": row["price"], "STOPLOSS_LIMIT": row["price"], "STOPLOSS_MARKET": row["triggerprice"]}.get(
            row["ordertype"], desk.prices.quote(row["exchange"], row["symboltoken"]).ltp / 100)
        category, amount = reference_margin(row["tradingsymbol"], row["producttype"],
                                            opening if side == 1 else -opening, Decimal(str(price)))
        used[category] += up(amount)
    realised = sum((Decimal(p["realised"]) for p in positions), Decimal(0))
    unrealised = sum((Decimal(p["unrealised"]) for p in positions), Decimal(0))
    cash = Decimal(1_000_000) + realised
    total = sum(used.values(), Decimal(0))
    net = cash + unrealised - total
    zero = Decimal(0)
    values = {
        "net": net, "availablecash": cash, "availableintradaypayin": zero, "availablelimitmargin": net,
        "collateral": zero, "m2munrealized": unrealised, "m2mrealized": realised, "utiliseddebits": total,
        "utilisedspan": used["span"], "utilisedoptionpremium": used["premium"], "utilisedholdingsales": zero,
        "utilisedexposure": used["exposure"], "utilisedturnover": zero, "utilisedpayout": zero,
    }
    return {name: f"{value:.4f}" for name, value in values.items()}


@settings(max_examples=300)
@given(steps)
def test_books_positions_and_funds_agree_after_any_sequence(sequence):
    desk = make_desk()
    for step in sequence:
        run(desk, step)
        check_books(desk)
    state = desk.engine.export()
    again = make_desk()
    again.prices.quotes = desk.prices.quotes
    again.engine.restore(state)
    assert again.rms() == desk.rms() and again.engine.positions(desk.client) == desk.engine.positions(desk.client)
