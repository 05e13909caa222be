"""The shipped schedule: versions by trade date, every rate sourced, a bad file refused whole."""
from __future__ import annotations

import datetime as dt
import json
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from service.charges import EXCHANGES, SEGMENTS, SHIPPED, NoRates, ScheduleError, load_schedule

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def write(tmp_path):
    def write(document) -> Path:
        path = tmp_path / "schedule.json"
        path.write_text(json.dumps(document))
        return path
    return write


def shipped_document() -> dict:
    return json.loads(SHIPPED.read_text())


def test_the_schedule_is_package_data():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["service"]
    assert SHIPPED.relative_to(ROOT / "service").as_posix() in {p.replace("*", SHIPPED.stem) for p in package_data}


def test_stt_on_futures_and_options_changes_on_2026_04_01():
    schedule = load_schedule()
    percent = lambda segment, day: schedule.rates(segment, "NSE", day).stt.percent  # noqa: E731
    assert (percent("futures", dt.date(2026, 3, 31)), percent("options", dt.date(2026, 3, 31))) == (Decimal("0.02"), Decimal("0.1"))
    assert (percent("futures", dt.date(2026, 4, 1)), percent("options", dt.date(2026, 4, 1))) == (Decimal("0.05"), Decimal("0.15"))
    assert schedule.rates("options", "NSE", dt.date(2026, 4, 1)).since == dt.date(2026, 4, 1)


def test_stt_sides():
    schedule = load_schedule()
    sides = {segment: schedule.rates(segment, "NSE", dt.date(2025, 1, 1)).stt_side for segment in SEGMENTS}
    assert sides == {"equity_intraday": "sell", "equity_delivery": "both", "futures": "sell", "options": "sell"}


def test_every_rate_names_its_source_and_only_bse_futures_charge_is_unverified():
    schedule = load_schedule()
    unverified = set()
    for since, table in schedule.versions:
        for (segment, exchange), rates in table.items():
            for name in ("stt", "exchange_txn", "sebi", "stamp", "gst"):
                rate = getattr(rates, name)
                assert rate.source.strip(), (since, segment, exchange, name)
                if not rate.verified:
                    unverified.add((segment, exchange, name, rate.percent))
    assert unverified == {("futures", "BSE", "exchange_txn", Decimal("0"))}


def test_a_trade_before_the_schedule_has_no_rates():
    with pytest.raises(NoRates, match="starts on 2024-10-01") as caught:
        load_schedule().rates("options", "NSE", dt.date(2024, 9, 30))
    assert (caught.value.segment, caught.value.exchange) == ("options", "NSE")


@pytest.mark.parametrize(("segment", "exchange"), [("commodity", "NSE"), ("options", "MCX")])
def test_an_unknown_segment_or_exchange_is_refused(segment, exchange):
    with pytest.raises(NoRates, match="unknown"):
        load_schedule().rates(segment, exchange, dt.date(2026, 4, 1))


def test_the_shipped_schedule_covers_every_segment_and_exchange():
    for _, table in load_schedule().versions:
        assert set(table) == {(s, e) for s in SEGMENTS for e in EXCHANGES}


def test_a_rate_without_a_source_is_refused(write):
    document = shipped_document()
    del document["versions"][1]["segments"]["options"]["stt"]["source"]
    document["versions"][0]["gst"]["verified"] = "yes"
    with pytest.raises(ScheduleError) as caught:
        load_schedule(write(document))
    assert caught.value.problems == [
        "versions[0].gst.verified: expected true or false",
        'versions[1].segments.options.stt.source: every rate names its source (or says none does, with "verified": false)',
    ]


@pytest.mark.parametrize(("change", "problem"), [
    (lambda d: d["versions"][0]["sebi"].update(percent="-1"), "versions[0].sebi.percent: expected a non-negative"),
    (lambda d: d["versions"][0]["sebi"].update(percent=0.0001), "versions[0].sebi.percent: expected a non-negative"),
    (lambda d: d["versions"][0]["sebi"].update(percent="NaN"), "versions[0].sebi.percent: expected a non-negative"),
    (lambda d: d["versions"][0]["segments"]["futures"]["stt"].update(side="seller"), "versions[0].segments.futures.stt.side"),
    (lambda d: d["versions"][0]["segments"]["futures"]["exchange_txn"].pop("BSE"), "exchange_txn.BSE: missing"),
    (lambda d: d["versions"][0]["segments"].pop("options"), "versions[0].segments.options: missing"),
    (lambda d: d["versions"][0]["segments"]["options"].update(ctt={}), "unknown field 'ctt'"),
    (lambda d: d["versions"][1].update({"from": "1 April 2026"}), "versions[1].from: expected an ISO date"),
    (lambda d: d["versions"].reverse(), "distinct and ascending"),
    (lambda d: d.update(versions=[]), "at least one version"),
])
def test_a_wrong_schedule_is_refused(write, change, problem):
    document = shipped_document()
    change(document)
    with pytest.raises(ScheduleError) as caught:
        load_schedule(write(document))
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_an_unreadable_schedule_is_refused(tmp_path):
    path = tmp_path / "schedule.json"
    path.write_text("{not json")
    with pytest.raises(ScheduleError, match="unreadable"):
        load_schedule(path)
