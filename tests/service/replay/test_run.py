"""The replay on synthetic recordings: stops, targets, trailing with activation, a gap through the
stop, square-off, injected signal and partial exits, staleness, variants and plug-ins."""
from __future__ import annotations

from streams import Plugin
from streams.examples.spike_filter import spike_filter
from tests.service.replay.synth import OPEN_MS, SQUARE_OFF_MS, event, merged, plan, replay, rules, ticks


def test_a_points_stop_exits_on_the_first_tick_at_or_through_it():
    rows, runner = replay([plan(rules_=rules(stop=("points", 5)))], ticks([800, 799, 797, 795.05, 795, 790]))
    row = rows[("live", 1)]
    assert (row.reason, row.level, row.trigger_ltp, row.exit_price) == ("STOP", 79_500, 79_500, 79_500)
    assert row.trigger_seq == 5 and row.trigger_ts_ms == OPEN_MS + 1_000 + 4 * 1_000
    assert row.gross == (79_500 - 80_000) * 10
    assert row.net == row.gross - row.charges and row.charges > 0


def test_a_target_exits_on_the_first_tick_at_or_beyond_it():
    rows, _ = replay([plan(rules_=rules(stop=("points", 5), target=("entry_pct", 1)))], ticks([801, 807.95, 808, 809]))
    row = rows[("live", 1)]
    assert (row.reason, row.level, row.trigger_ltp, row.trigger_seq) == ("TARGET", 80_800, 80_800, 3)
    assert row.gross == 800 * 10


def test_a_trail_starts_at_its_activation_moves_and_fires_as_trail():
    trade = plan(rules_=rules(stop=("points", 5), trail=("points", 3), activation=("points", 4)))
    rows, runner = replay([trade], ticks([801, 803, 804, 806, 805, 803.5, 803]))
    row = rows[("live", 1)]
    assert (row.reason, row.level, row.trigger_ltp) == ("TRAIL", 80_300, 80_300)
    stops = [stop for _, stop in runner.runs[0].trades[1].stops]
    assert stops == [79_500, 80_100, 80_300]  # armed at 795, activated at 804 (801), moved at 806 (803)


def test_a_gap_through_the_stop_fills_at_the_gap_not_the_level():
    rows, _ = replay([plan(rules_=rules(stop=("points", 5)))], ticks([800, 799, 780, 781]))
    row = rows[("live", 1)]
    assert (row.reason, row.level, row.trigger_ltp, row.exit_price) == ("STOP", 79_500, 78_000, 78_000)
    assert row.gross == (78_000 - 80_000) * 10


def test_a_short_trade_stops_above_and_gains_below():
    rows, _ = replay([plan(side="SHORT", rules_=rules(stop=("points", 2)))], ticks([799, 801, 802.5]))
    row = rows[("live", 1)]
    assert (row.reason, row.level, row.trigger_ltp) == ("STOP", 80_200, 80_250)
    assert row.gross == -(80_250 - 80_000) * 10


def test_intraday_trades_are_squared_off_at_the_first_clock_past_square_off():
    start = SQUARE_OFF_MS - 5 * 60_000
    recording = ticks([800 + n * 0.05 for n in range(40)], start_ms=start, step_ms=15_000)
    intraday = plan(1, rules_=rules(stop=("points", 50)), at_ms=start - 1_000)
    delivery = plan(2, rules_=rules(stop=("points", 50)), at_ms=start - 1_000, product="DELIVERY")
    rows, runner = replay([intraday, delivery], recording)
    squared = rows[("live", 1)]
    assert (squared.reason, squared.exit_ms) == ("SQUARE_OFF", SQUARE_OFF_MS)
    last_before = max((r for r in recording if r.arrival_ns // 1_000_000 <= SQUARE_OFF_MS), key=lambda r: r.seq)
    assert squared.exit_price == last_before.tick.ltp
    assert rows[("live", 2)].reason == "OPEN"  # delivery is not squared off: marked at the last tick
    assert rows[("live", 2)].exit_price == recording[-1].tick.ltp


def test_a_recorded_signal_exit_is_injected_at_its_time_unless_the_variant_left_before():
    at = OPEN_MS + 1_000 + 3_500
    trade = plan(rules_=rules(stop=("points", 5)), more=[
        event("exit_fired", at, reason="SIGNAL", level=None, tick_ltp=79_900, tick_ts_ms=at - 500, source=""),
        event("exit_fill", at + 40, quantity=10, price=79_850, tag="tg1X1"), event("closed", at + 41)])
    recording = ticks([800, 799, 798, 799, 797, 790])
    rows, _ = replay([trade], recording, variants={"tight": {"stoploss": {"type": "points", "value": 1.5}}})
    live = rows[("live", 1)]
    assert (live.reason, live.exit_ms, live.exit_price) == ("SIGNAL", at, 79_900)
    assert (live.recorded_reason, live.recorded_exit_price) == ("SIGNAL", 79_850)
    tight = rows[("tight", 1)]
    assert (tight.reason, tight.level, tight.trigger_ltp) == ("STOP", 79_850, 79_800)


def test_recorded_stop_exits_are_left_to_the_engine_not_injected():
    trade = plan(rules_=rules(stop=("points", 5)), more=[
        event("exit_fired", OPEN_MS + 2_000, reason="STOP", level=79_500, tick_ltp=79_400, tick_ts_ms=OPEN_MS + 1_999)])
    rows, _ = replay([trade], ticks([800, 799]), variants={"wide": {"stoploss": {"type": "points", "value": 50}}})
    assert rows[("live", 1)].reason == "OPEN" and rows[("wide", 1)].reason == "OPEN"
    assert rows[("live", 1)].recorded_reason == "STOP"


def test_a_partial_exit_keeps_its_recorded_fills_and_the_rest_follows_the_stop():
    at = OPEN_MS + 2_500
    trade = plan(rules_=rules(stop=("points", 5)), more=[
        event("partial_exit_fired", at, reason="SIGNAL", quantity=4),
        event("exit_fill", at + 10, quantity=4, price=80_500, tag="tg1X1"),
        event("partial_exit_done", at + 20, asked=4, quantity=4)])
    rows, _ = replay([trade], ticks([801, 805, 800, 794]))
    row = rows[("live", 1)]
    assert (row.reason, row.quantity, row.exit_price) == ("STOP", 10, 79_400)
    assert row.gross == 4 * (80_500 - 80_000) + 6 * (79_400 - 80_000)


def test_a_later_entry_fill_amends_the_quantity_and_average():
    trade = plan(rules_=rules(stop=("points", 5)), quantity=6, more=[
        event("entry_fill", OPEN_MS + 1_500, quantity=4, price=80_100, tag="tg1E1")])
    rows, runner = replay([trade], ticks([800, 801, 795.5, 795]))
    row = rows[("live", 1)]
    assert (row.quantity, row.entry_price) == (10, 80_040)
    assert row.level == 79_540  # 5 points under the new average 800.40
    assert row.reason == "STOP" and row.trigger_ltp == 79_500
    assert row.gross == 10 * 79_500 - (6 * 80_000 + 4 * 80_100)


def test_a_stale_tick_does_not_fire_a_fresh_one_does():
    recording = ticks([800, 799])
    late = ticks([790], start_ms=OPEN_MS + 3_000, first_seq=3, lag_ms=8_000)  # stamped 8 s before it arrived
    fresh = ticks([794], start_ms=OPEN_MS + 12_000, first_seq=4)
    rows, _ = replay([plan(rules_=rules(stop=("points", 5)))], merged(recording, late, fresh))
    assert (rows[("live", 1)].trigger_ltp, rows[("live", 1)].reason) == (79_400, "STOP")


def test_ticks_outside_the_session_do_not_fire():
    evening = OPEN_MS + 7 * 3_600_000  # 17:00 IST
    trade = plan(rules_=rules(stop=("points", 5)), at_ms=evening - 1_000, product="DELIVERY")
    rows, _ = replay([trade], ticks([790, 780], start_ms=evening))
    assert rows[("live", 1)].reason == "OPEN"
    rows, _ = replay([trade], ticks([790, 780], start_ms=evening), always_open=True)
    assert rows[("live", 1)].reason == "STOP"


def test_each_variant_replays_every_trade_with_its_own_rules():
    trades = [plan(1, rules_=rules(stop=("points", 5))), plan(2, entry=400, rules_=rules(stop=("points", 2)),
                                                              token="1594")]
    recording = merged(ticks([799, 796, 794, 799, 806]), ticks([399, 397.5, 396, 401, 399.5], token="1594"))
    variants = {"pct1": {"stoploss": {"type": "entry_pct", "value": 1}},
                "trail": {"stoploss": {"type": "points", "value": 10},
                          "trail": {"type": "points", "value": 1, "activation": {"type": "points", "value": 0.5}}},
                "wider": {"extends": "live", "target": {"type": "points", "value": 5}}}
    rows, _ = replay(trades, recording, variants=variants)
    assert {key: row.reason for key, row in rows.items()} == {
        ("live", 1): "STOP", ("live", 2): "STOP", ("pct1", 1): "OPEN", ("pct1", 2): "STOP",
        ("trail", 1): "OPEN", ("trail", 2): "TRAIL", ("wider", 1): "STOP", ("wider", 2): "STOP"}
    assert rows[("pct1", 1)].exit_price == 80_600 and rows[("trail", 2)].level == 40_000


def test_rules_the_engine_refuses_are_reported_not_replayed():
    rows, _ = replay([plan(rules_=rules(stop=("points", 5)))], ticks([799, 700]),
                     variants={"huge": {"stoploss": {"type": "points", "value": 900}}})
    assert rows[("huge", 1)].reason == "REFUSED" and rows[("huge", 1)].gross is None
    assert "stoploss" in rows[("huge", 1)].note


def test_each_variant_gets_its_own_plug_ins_and_a_spike_filter_holds_a_lone_spike():
    def plugins(name):
        return [Plugin("spikes", "tick", spike_filter(max_jump_pct=2))] if name == "filtered" else []

    recording = ticks([800, 770, 800, 799, 796, 794], step_ms=200)  # a lone 4 % spike, then a real fall (within hold_ms)
    rows, _ = replay([plan(rules_=rules(stop=("points", 5)))], recording, plugins=plugins,
                     variants={"filtered": {"extends": "live"}})
    assert rows[("live", 1)].trigger_ltp == 77_000
    assert rows[("filtered", 1)].trigger_ltp == 79_400


def test_the_clock_ticks_on_the_live_grid_between_inputs():
    _, runner = replay([plan(rules_=rules(stop=("points", 5)))], ticks([800, 800], step_ms=10_000))
    # from 10:00:00.500 (the entry) to 10:00:11.003: a clock every 250 ms on multiples of 250
    assert runner.clocks == (OPEN_MS + 11_003) // 250 - (OPEN_MS + 500) // 250 + 1
