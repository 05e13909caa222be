import logging
import time
from datetime import date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paper.instruments import Instrument, Universe, build_universe
from paper.prices import CANDLE_INTERVALS, PriceBook
from paper.pricing import IST, call_put_price, expiry_epoch
from paper.quotes import Quote

TODAY = date(2025, 11, 24)
OPEN_10AM = datetime(2025, 11, 24, 10, 0, tzinfo=IST).timestamp()
SBIN, NIFTY, SENSEX = ("NSE", "3045"), ("NSE", "99926000"), ("BSE", "99919000")


class Clock:
    def __init__(self, now: float = OPEN_10AM) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def universe() -> Universe:
    return build_universe(TODAY, seed=7)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_book(universe, clock):
    def make(seed: int = 3, at: Clock | None = None) -> PriceBook:
        return PriceBook(universe, seed=seed, clock=at or clock)

    return make


def contract(universe: Universe, name: str, right: str | None, *, offset_steps: int = 0, expiry_index: int = 1) -> Instrument:
    spot = universe.spot_by_name(name)
    assert spot is not None
    contracts = [c for c in universe.derivatives_of(spot.exchange, spot.token) if c.option_type == right]
    expiry = sorted({c.expiry for c in contracts})[expiry_index if right else 0]
    chain = sorted((c for c in contracts if c.expiry == expiry), key=lambda c: c.strike_paise or 0)
    if right is None:
        return chain[0]
    reference = universe.reference_price(spot.exchange, spot.token)
    atm = min(range(len(chain)), key=lambda i: abs((chain[i].strike_paise or 0) - reference))
    return chain[atm + offset_steps]


def assert_coherent(quote: Quote, instrument: Instrument) -> None:
    tick = instrument.tick_paise
    assert quote.ltp > 0 and quote.ltp % tick == 0
    assert quote.low <= quote.ltp <= quote.high and quote.low <= quote.open <= quote.high
    assert quote.week52_low <= quote.low and quote.week52_high >= quote.high
    if instrument.is_index:
        assert (quote.upper_circuit, quote.lower_circuit, quote.bids, quote.asks) == (0, 0, [], [])
        return
    assert quote.lower_circuit <= quote.close <= quote.upper_circuit
    assert quote.upper_circuit % tick == 0 and quote.lower_circuit % tick == 0
    assert len(quote.asks) == 5 and 1 <= len(quote.bids) <= 5
    assert [p for _, p, _ in quote.bids] == [quote.ltp - tick * (n + 1) for n in range(len(quote.bids))]
    assert [p for _, p, _ in quote.asks] == [quote.ltp + tick * (n + 1) for n in range(5)]
    assert all(q > 0 and q % instrument.lotsize == 0 and 0 < orders <= q for q, _, orders in quote.bids + quote.asks)
    assert quote.total_buy_qty >= sum(q for q, _, _ in quote.bids)
    assert quote.total_sell_qty >= sum(q for q, _, _ in quote.asks)
    if quote.volume:
        assert quote.low <= quote.avg_price <= quote.high
    assert (quote.open_interest > 0) == instrument.is_derivative


def test_unknown_instrument_is_a_precise_key_error(make_book):
    book = make_book()
    with pytest.raises(KeyError, match="unknown instrument: exchange 'NSE' token '424242'"):
        book.quote("NSE", "424242")
    with pytest.raises(KeyError):
        book.set_ltp("NFO", "1", 500)


def test_spots_start_near_their_reference_price(universe, make_book):
    book = make_book()
    for spot in universe.spots:
        quote = book.quote(spot.exchange, spot.token)
        assert quote.close == universe.reference_price(spot.exchange, spot.token)
        assert abs(quote.ltp - quote.close) <= quote.close * 0.03
        assert_coherent(quote, spot)


def test_same_seed_walks_the_same_path(universe):
    def path(seed: int) -> list[tuple[str, int]]:
        clock = Clock()
        book = PriceBook(universe, seed=seed, clock=clock)
        book.activate("NFO", contract(universe, "NIFTY", "CE").token)
        out = []
        for _ in range(20):
            clock.advance(60)
            out += [(q.token, q.ltp) for q in book.step(60)]
        return out

    assert path(5) == path(5)
    assert path(5) != path(6)


def test_step_moves_every_spot_and_keeps_quotes_coherent(universe, make_book, clock):
    book = make_book()
    before = {s.token: book.quote(s.exchange, s.token) for s in universe.spots}
    for _ in range(30):
        clock.advance(30)
        changed = book.step(30)
        assert {(q.exchange, q.token) for q in changed} >= {
            (s.exchange, s.token) for s in universe.spots if not s.is_index
        }
    for spot in universe.spots:
        quote = book.quote(spot.exchange, spot.token)
        assert quote.sequence > before[spot.token].sequence
        assert quote.exchange_ts_ms == int(clock.now * 1000)
        assert_coherent(quote, spot)
        if not spot.is_index:
            assert quote.volume > 0 and quote.last_qty > 0 and quote.last_trade_ts == int(clock.now)
    nifty = book.quote(*NIFTY)
    assert nifty.volume == 0 and nifty.ltp != before["99926000"].ltp


def test_walk_has_the_volatility_it_claims(universe):
    clock = Clock()
    book = PriceBook(universe, seed=11, clock=clock)
    start = book.ltp(*NIFTY)
    for _ in range(250):  # about one trading day of 90 s steps
        clock.advance(90)
        book.step(90)
    move = abs(book.ltp(*NIFTY) / start - 1)
    assert move < 0.05  # a 20 % annual vol index does not move 5 % in a day


def test_sequence_increments_once_per_change(make_book, clock):
    book = make_book()
    first = book.quote(*SBIN)
    seen = (first.ltp, first.sequence, first.volume)
    clock.advance(1)
    book.step(1)
    assert book.quote(*SBIN).sequence == first.sequence + 1
    book.set_ltp(*SBIN, 81000)
    assert book.quote(*SBIN).sequence == first.sequence + 2
    assert (first.ltp, first.sequence, first.volume) == seen  # a published quote is never mutated


def test_only_touched_contracts_are_live(universe, make_book, clock):
    book = make_book()
    call = contract(universe, "NIFTY", "CE")
    assert not book.is_active("NFO", call.token)
    clock.advance(60)
    assert all(q.exchange not in ("NFO", "BFO") for q in book.step(60))
    book.activate("NFO", call.token)
    assert book.is_active("NFO", call.token)
    assert len(book.snapshot()) == len(universe.spots) + 1
    book.set_ltp(*NIFTY, book.ltp(*NIFTY) + 10_000)
    assert book.quote("NFO", call.token).ltp > 0
    assert len(book.snapshot()) == len(universe.spots) + 1


def test_future_carries_cost_of_carry(universe, make_book):
    book = make_book()
    future = contract(universe, "NIFTY", None)
    spot = book.ltp(*NIFTY)
    quote = book.quote("NFO", future.token)
    assert spot < quote.ltp < spot * 1.01
    assert_coherent(quote, future)
    assert quote.lower_circuit < quote.close < quote.upper_circuit


def test_premiums_move_with_the_underlying(universe, make_book):
    book = make_book()
    calls = [contract(universe, "NIFTY", "CE", offset_steps=k) for k in (-5, 0, 5)]
    puts = [contract(universe, "NIFTY", "PE", offset_steps=k) for k in (-5, 0, 5)]
    seen: list[tuple[list[int], list[int]]] = []
    for level in range(2_400_000, 2_600_001, 20_000):
        book.set_ltp(*NIFTY, level)
        seen.append(([book.ltp("NFO", c.token) for c in calls], [book.ltp("NFO", p.token) for p in puts]))
    for (calls_low, puts_low), (calls_high, puts_high) in zip(seen, seen[1:]):
        assert all(a <= b for a, b in zip(calls_low, calls_high))
        assert all(a >= b for a, b in zip(puts_low, puts_high))
    assert seen[-1][0][1] > seen[0][0][1] and seen[-1][1][1] < seen[0][1][1]
    for option in calls + puts:
        assert_coherent(book.quote("NFO", option.token), option)


def test_premiums_decay_with_time(universe, make_book, clock):
    book = make_book()
    call, put = contract(universe, "BANKNIFTY", "CE"), contract(universe, "BANKNIFTY", "PE")
    spot = universe.spot_by_name("BANKNIFTY")
    level = book.ltp(spot.exchange, spot.token)
    before = book.ltp("NFO", call.token), book.ltp("NFO", put.token)
    clock.advance(5 * 86400)
    book.set_ltp(spot.exchange, spot.token, level)
    after = book.ltp("NFO", call.token), book.ltp("NFO", put.token)
    assert after[0] < before[0] and after[1] < before[1]


def test_at_expiry_an_option_is_worth_its_intrinsic_value(universe, make_book, clock):
    book = make_book()
    call = contract(universe, "NIFTY", "CE", offset_steps=-4, expiry_index=0)
    out_of_money = contract(universe, "NIFTY", "CE", offset_steps=6, expiry_index=0)
    clock.now = expiry_epoch(call.expiry) + 600
    book.set_ltp(*NIFTY, call.strike_paise + 12_345)
    assert abs(book.ltp("NFO", call.token) - 12_345) <= 5
    assert book.ltp("NFO", out_of_money.token) == 5


def test_set_ltp_on_a_spot_reprices_its_active_contracts(universe, make_book):
    book = make_book()
    call, put = contract(universe, "NIFTY", "CE"), contract(universe, "NIFTY", "PE")
    other = contract(universe, "BANKNIFTY", "CE")
    for c in (call, put, other):
        book.activate("NFO", c.token)
    batches: list[list[Quote]] = []
    book.add_listener(batches.append)
    changed = book.set_ltp(*NIFTY, book.ltp(*NIFTY) + 15_000)
    assert (changed[0].exchange, changed[0].token) == NIFTY
    assert {q.token for q in changed[1:]} == {call.token, put.token}
    assert batches == [changed]
    assert book.quote(*NIFTY) is changed[0]


def test_set_ltp_on_a_contract_keeps_its_adjustment(universe, make_book):
    book = make_book()
    call = contract(universe, "NIFTY", "CE")
    model = book.ltp("NFO", call.token)
    changed = book.set_ltp("NFO", call.token, model + 2_000)
    assert [q.token for q in changed] == [call.token] and changed[0].ltp == model + 2_000
    reference = PriceBook(book.universe, seed=3, clock=lambda: OPEN_10AM)
    for level in (2_450_000, 2_500_000, 2_550_000):
        book.set_ltp(*NIFTY, level)
        reference.set_ltp(*NIFTY, level)
        assert abs(book.ltp("NFO", call.token) - reference.ltp("NFO", call.token) - 2_000) <= 5


def test_set_ltp_refuses_prices_off_the_tick(universe, make_book):
    book = make_book()
    with pytest.raises(ValueError, match="not a multiple of its tick 5 paise"):
        book.set_ltp(*SBIN, 80_003)
    with pytest.raises(ValueError, match="must be positive integer paise"):
        book.set_ltp(*SBIN, 0)
    with pytest.raises(ValueError, match="must be positive integer paise"):
        book.set_ltp(*SBIN, 800.5)  # type: ignore[arg-type]


def test_listeners_see_state_already_updated_and_a_failing_one_is_isolated(make_book, clock, caplog):
    book = make_book()
    seen: list[int] = []

    def broken(batch: list[Quote]) -> None:
        raise RuntimeError("socket gone")

    book.add_listener(broken)
    remove = book.add_listener(lambda batch: seen.append(book.ltp(*SBIN)))
    with caplog.at_level(logging.ERROR, logger="paper.prices"):
        book.set_ltp(*SBIN, 81_000)
    assert seen == [81_000]
    assert "price listener" in caplog.text
    remove()
    clock.advance(1)
    book.step(1)
    assert seen == [81_000]


def test_circuits(universe, make_book):
    book = make_book()
    bands = set()
    for spot in universe.spots:
        quote = book.quote(spot.exchange, spot.token)
        if spot.is_index:
            assert quote.upper_circuit == quote.lower_circuit == 0
            continue
        band = round((quote.upper_circuit - quote.close) / quote.close, 2)
        assert band in (0.10, 0.20)
        assert round((quote.close - quote.lower_circuit) / quote.close, 2) == band
        assert abs(quote.close * (1 + band) - quote.upper_circuit) < 5
        bands.add(band)
    assert bands == {0.10, 0.20}
    option = book.quote("NFO", contract(universe, "NIFTY", "PE", offset_steps=3).token)
    assert option.lower_circuit == 5 and option.upper_circuit > 3 * option.ltp


def test_a_new_session_closes_the_previous_one(make_book, clock):
    book = make_book()
    book.set_ltp(*SBIN, 82_000)
    clock.advance(86400)
    book.step(1)
    quote = book.quote(*SBIN)
    assert quote.close == 82_000 and quote.open == 82_000
    assert quote.volume == quote.last_qty
    assert quote.upper_circuit in (90_200, 98_400)


def minute(hh: int, mm: int, ss: int = 0, day: int = 24) -> float:
    return datetime(2025, 11, day, hh, mm, ss, tzinfo=IST).timestamp()


def test_candles_aggregate_across_intervals(make_book, clock):
    book = make_book()
    trades = [((9, 15, 5), 80_000), ((9, 15, 40), 80_100), ((9, 16, 10), 79_900), ((9, 19, 59), 80_050),
              ((9, 20, 0), 80_200), ((10, 14, 0), 80_300), ((10, 15, 30), 80_150)]
    for (hh, mm, ss), price in trades:
        clock.now = minute(hh, mm, ss)
        book.set_ltp(*SBIN, price)
    day_start, day_end = datetime(2025, 11, 24, 0, 0), datetime(2025, 11, 24, 23, 59)
    ones = book.candles(*SBIN, "ONE_MINUTE", day_start, day_end)
    assert ones[0] == ["2025-11-24T09:15:00+05:30", 800.0, 801.0, 800.0, 801.0, 2]
    assert [row[0][11:16] for row in ones] == ["09:15", "09:16", "09:19", "09:20", "10:14", "10:15"]
    fives = book.candles(*SBIN, "FIVE_MINUTE", day_start, day_end)
    assert fives[0] == ["2025-11-24T09:15:00+05:30", 800.0, 801.0, 799.0, 800.5, 4]
    hours = book.candles(*SBIN, "ONE_HOUR", day_start, day_end)
    assert [row[0][11:16] for row in hours] == ["09:15", "10:15"]
    assert hours[0][1:] == [800.0, 803.0, 799.0, 803.0, 6]
    days = book.candles(*SBIN, "ONE_DAY", datetime(2025, 11, 24, 9, 15), datetime(2025, 11, 24, 9, 15))
    assert days == [["2025-11-24T00:00:00+05:30", 800.0, 803.0, 799.0, 801.5, 7]]
    # inclusive bounds, aware datetimes, and the still-open minute
    bounded = book.candles(*SBIN, "ONE_MINUTE", datetime(2025, 11, 24, 9, 16, tzinfo=IST), datetime(2025, 11, 24, 9, 20))
    assert [row[0][11:16] for row in bounded] == ["09:16", "09:19", "09:20"]
    assert book.candles(*SBIN, "ONE_MINUTE", day_start, day_end)[-1][4] == 801.5


def test_index_candles_have_no_volume(make_book, clock):
    book = make_book()
    book.set_ltp(*SENSEX, 8_200_000)
    rows = book.candles(*SENSEX, "ONE_MINUTE", datetime(2025, 11, 24), datetime(2025, 11, 25))
    assert rows == [["2025-11-24T10:00:00+05:30", 82000.0, 82000.0, 82000.0, 82000.0, 0]]


def test_candle_queries_refuse_unknown_intervals_and_instruments(make_book):
    book = make_book()
    with pytest.raises(ValueError, match="unknown candle interval 'TWO_MINUTE'"):
        book.candles(*SBIN, "TWO_MINUTE", datetime(2025, 11, 24), datetime(2025, 11, 25))
    with pytest.raises(KeyError):
        book.candles("NSE", "0", "ONE_MINUTE", datetime(2025, 11, 24), datetime(2025, 11, 25))
    assert book.candles(*SBIN, "ONE_MINUTE", datetime(2025, 11, 24), datetime(2025, 11, 25)) == []


naive_trades = st.lists(st.tuples(st.integers(1, 900), st.integers(70_000, 90_000).map(lambda p: p - p % 5)), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trades=naive_trades, interval=st.sampled_from(sorted(CANDLE_INTERVALS)))
def test_candles_equal_a_naive_fold_of_the_trades(universe, trades, interval):
    clock = Clock(minute(9, 0))
    book = PriceBook(universe, seed=1, clock=clock)
    done: list[tuple[float, int, int]] = []
    for gap, price in trades:
        clock.advance(gap)
        quote = book.set_ltp(*SBIN, price)[0]
        done.append((clock.now, price, quote.last_qty))
    width = CANDLE_INTERVALS[interval] * 60
    anchor = minute(9, 15)
    expected: dict[float, list] = {}
    for at, price, qty in done:
        bucket = minute(0, 0) if interval == "ONE_DAY" else anchor + (int(at // 60) * 60 - anchor) // width * width
        row = expected.setdefault(bucket, [price, price, price, price, 0])
        row[1], row[2], row[3], row[4] = max(row[1], price), min(row[2], price), price, row[4] + qty
    got = book.candles(*SBIN, interval, datetime(2025, 11, 24), datetime(2025, 11, 24, 23, 59))
    assert got == [
        [datetime.fromtimestamp(b, IST).isoformat(), o / 100, h / 100, lo / 100, c / 100, v]
        for b, (o, h, lo, c, v) in sorted(expected.items())
    ]


def test_drain_and_load_round_trip(universe, make_book, clock):
    book = make_book()
    for offset in range(0, 300, 20):
        clock.now = OPEN_10AM + offset
        book.set_ltp(*SBIN, 80_000 + offset)
    closed = book.drain_closed_candles()
    minutes = [row[2] for row in closed if row[:2] == SBIN]
    assert minutes == [OPEN_10AM + 60 * n for n in range(4)]  # 10:04 is still open
    assert book.drain_closed_candles() == []
    clock.advance(60)
    assert [row[2] for row in book.drain_closed_candles()] == [OPEN_10AM + 240]
    restarted = make_book()
    restarted.load_candles(closed)
    assert restarted.drain_closed_candles() == []
    window = datetime(2025, 11, 24, 9, 0), datetime(2025, 11, 24, 10, 3)
    assert restarted.candles(*SBIN, "ONE_MINUTE", *window) == book.candles(*SBIN, "ONE_MINUTE", *window)
    assert all(isinstance(v, (str, int)) for row in closed for v in row)


def test_snapshot_restore_round_trip(universe, make_book, clock):
    book = make_book()
    call = contract(universe, "NIFTY", "CE")
    for _ in range(10):
        clock.advance(5)
        book.step(5)
    book.set_ltp("NFO", call.token, book.ltp("NFO", call.token) + 1_500)
    rows = book.snapshot()
    assert all(len(row) == 10 and row[9] == int(clock.now) for row in rows)
    restarted = make_book(seed=99)
    restarted.restore(rows)
    for exchange, token, *_ in rows:
        before, after = book.quote(exchange, token), restarted.quote(exchange, token)
        fields = ("ltp", "open", "high", "low", "close", "volume")
        assert [getattr(after, f) for f in fields] == [getattr(before, f) for f in fields]
    book.set_ltp(*NIFTY, 2_520_000)
    restarted.set_ltp(*NIFTY, 2_520_000)
    assert restarted.ltp("NFO", call.token) == book.ltp("NFO", call.token)


def test_a_snapshot_from_yesterday_restores_as_the_previous_close(make_book, clock):
    book = make_book()
    book.set_ltp(*SBIN, 83_000)
    rows = book.snapshot()
    clock.advance(86400)
    restarted = make_book()
    restarted.restore(rows)
    quote = restarted.quote(*SBIN)
    assert (quote.ltp, quote.open, quote.high, quote.low, quote.close, quote.volume) == (83_000,) * 5 + (0,)
    restarted.restore([row[:9] for row in rows])  # rows without an as-of are taken as today's
    assert restarted.quote(*SBIN).volume == book.quote(*SBIN).volume


def test_restore_skips_instruments_the_universe_lacks(make_book, caplog):
    book = make_book()
    with caplog.at_level(logging.WARNING, logger="paper.prices"):
        book.restore([("NFO", "1", 500, 500, 500, 500, 500, 0, 0)])
    assert "unknown instrument NFO 1" in caplog.text


def test_a_step_reprices_hundreds_of_active_contracts(universe, make_book, clock):
    """How fast a step runs is the benchmarks' business; here, that every active contract moves with its spot."""
    book = make_book()
    contracts = [c for c in universe.instruments if c.is_derivative][::12][:400]
    for c in contracts:
        book.activate(c.exchange, c.token)
    moved: set[str] = set()
    for _ in range(40):
        clock.advance(0.25)
        moved |= {q.token for q in book.step(0.25)}
    tokens = {c.token for c in contracts}
    assert len(tokens & moved) >= len(tokens) // 2, (len(tokens & moved), len(tokens))  # far-out ones rest at the floor


@settings(max_examples=60, deadline=None)
@given(
    spot=st.floats(15_000, 35_000), strike=st.sampled_from([20_000.0, 25_000.0, 30_000.0]),
    days=st.floats(0.01, 60), right=st.sampled_from(["CE", "PE"]),
)
def test_black_scholes_is_monotone_in_spot_and_time(spot, strike, days, right):
    price = call_put_price(spot, strike, days / 365, 0.15, right)
    up = call_put_price(spot * 1.01, strike, days / 365, 0.15, right)
    later = call_put_price(spot, strike, (days + 5) / 365, 0.15, right)
    intrinsic = max(0.0, spot - strike if right == "CE" else strike - spot)
    assert price >= intrinsic
    assert (up >= price - 1e-9) if right == "CE" else (up <= price + 1e-9)
    if right == "CE" or spot >= strike:  # deep in-the-money European puts can be worth less with more time
        assert later >= price - 1e-9


def test_black_scholes_refuses_nonsense():
    with pytest.raises(ValueError, match="option type 'XX'"):
        call_put_price(100.0, 100.0, 0.1, 0.2, "XX")
    with pytest.raises(ValueError, match="must be positive"):
        call_put_price(0.0, 100.0, 0.1, 0.2, "CE")
    assert expiry_epoch(date(2025, 11, 25)) == datetime(2025, 11, 25, 15, 30, tzinfo=IST).timestamp()


def test_a_company_trades_at_one_price_on_both_exchanges(make_book, clock):
    book = make_book()
    for _ in range(20):
        clock.advance(60)
        book.step(60)
    assert book.ltp("BSE", "500112") == book.ltp(*SBIN)
    assert book.ltp("BSE", "500325") == book.ltp("NSE", "2885")
