"""The desk a trader keeps open all day, in headless Chromium against the real app and a paper exchange,
at 1280×800 and 390×844: what the page shows, not how it is built.

Screenshots go to `test-output/desk/` (ignored by git); with UPDATE_DOCS_SCREENSHOT=1 the laptop view
also replaces `docs/desk.png`, the README's picture (a plain run leaves the checkout clean).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.browser.pages import DESKTOP, PHONE, cell, open_trade, row, shot, signed_in
from service.operators.book import OperatorBook
from tests.support.relay import Relay

ROOT = Path(__file__).resolve().parents[2]
STOP_10 = {"type": "points", "value": 10}
TRAIL = {"type": "points", "value": 4, "activation": {"type": "points", "value": 2}}
STALE = re.compile(r"prices stale since \d\d:\d\d:\d\d")


def box(locator) -> dict:
    found = locator.bounding_box()
    assert found is not None, f"{locator} is not on the page"
    return found


def overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and \
        a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def opacity(locator) -> float:
    return float(locator.evaluate("element => getComputedStyle(element).opacity"))


def test_the_reconnect_schedule_is_capped_at_1_5_s_and_jittered(service_factory, browser: Browser):
    service = service_factory()
    page = browser.new_context(viewport=DESKTOP).new_page()
    signed_in(page, service)
    waits = page.evaluate("""() => Array.from({length: 40}, (_, attempt) =>
        [0, 0.5, 0.999999].map((r) => tickguard.backoffDelay(attempt, () => r)))""")
    assert all(0 < wait <= 1500 for waits_of in waits for wait in waits_of), waits
    assert waits[0][0] < waits[1][0] < waits[2][0]  # it backs off …
    assert waits[39] == [750, 1125, 1500]  # … to at most 1.5 s, jittered over its upper half
    drawn = page.evaluate("() => new Set(Array.from({length: 50}, () => tickguard.backoffDelay(30))).size")
    assert drawn > 1  # Math.random draws the jitter: pages coming back at once spread out


def test_offline_greys_ltp_and_pnl_says_since_when_and_comes_back_live(service_factory, browser: Browser):
    service = service_factory()
    service.price(800)
    relay = Relay(service.server.port).start()
    page = browser.new_context(viewport=DESKTOP).new_page()
    signed_in(page, service, relay.url)
    trade_id = open_trade(service, stoploss=STOP_10, quantity=2)
    expect(cell(page, trade_id, "stop")).to_have_text("790.00")  # filled at 800 and armed
    service.price(804)
    ltp, pnl = cell(page, trade_id, "ltp"), cell(page, trade_id, "pnl")
    expect(pnl).to_have_text("+8.00")
    assert opacity(ltp) == opacity(pnl) == 1
    expect(page.locator("#stale")).to_be_hidden()

    relay.cut()  # the service is unreachable: the page says so and greys what is no longer live
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#stale")).to_have_text(STALE)
    assert opacity(ltp) < 1 and opacity(pnl) < 1
    expect(ltp).to_have_text("804.00")  # the last price, shown as stale rather than blanked
    shot(page, "desktop-offline")
    service.price(806)  # moves while the page cannot hear

    relay.start()  # the same address answers again
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#stale")).to_be_hidden()
    expect(ltp).to_have_text("806.00")  # the fresh snapshot
    expect(pnl).to_have_text("+12.00")
    assert opacity(ltp) == 1
    relay.cut()


def test_the_chart_with_its_levels_is_in_view_on_a_laptop(service_factory, browser: Browser):
    service = service_factory()
    service.price(800)
    page = browser.new_context(viewport=DESKTOP).new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    signed_in(page, service)
    trailed = open_trade(service, stoploss=STOP_10, trail=TRAIL, target={"type": "points", "value": 30}, quantity=2)
    expect(cell(page, trailed, "stop")).to_have_text("790.00")
    tight = open_trade(service, stoploss={"type": "points", "value": 2}, quantity=3, strategyname="scalp")
    near = open_trade(service, stoploss=STOP_10, target={"type": "points", "value": 4}, quantity=5, strategyname="swing")
    others = [open_trade(service, stoploss=STOP_10, quantity=n, strategyname=f"s{n}") for n in range(2, 6)]
    for trade_id in (tight, near, *others):
        expect(cell(page, trade_id, "stop")).to_have_text(re.compile(r"\d"))
    service.price(797.5)  # the tight stop at 798 goes
    expect(cell(page, tight, "exit_reason")).to_have_text("STOP")
    expect(cell(page, tight, "exit")).to_have_text(re.compile(r"^79\d\.\d\d$"))
    for price in (801, 803, 802.5, 805):  # the trail moves the stop; 804 takes the near target
        service.price(price)
        expect(cell(page, trailed, "ltp")).to_have_text(f"{price:.2f}")
    expect(cell(page, near, "exit_reason")).to_have_text("TARGET")
    row(page, trailed).locator('[data-field="symbol"]').click()
    chart = page.locator("#chart")
    expect(chart).to_have_attribute("data-trade-id", str(trailed))
    for line, value in (("entry", "80000"), ("stop", "80100"), ("target", "83000")):
        expect(chart.locator(f'[data-line="{line}"]')).to_have_attribute("data-value", value)
    expect(chart.locator('[data-label="stop"]')).to_have_text("stop 801.00")
    frame = box(chart)
    assert frame["y"] >= 0 and frame["y"] + frame["height"] <= 800 and frame["x"] + frame["width"] <= 1280
    assert box(page.locator("#chart-panel"))["y"] + box(page.locator("#chart-panel"))["height"] <= 800
    for line in ("entry", "stop", "target", "ltp"):  # every line inside the frame, none drawn off it
        drawn = box(chart.locator(f'[data-line="{line}"]'))
        assert frame["y"] <= drawn["y"] and drawn["y"] + drawn["height"] <= frame["y"] + frame["height"], line
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    close = row(page, trailed).locator("button.close")
    assert box(close)["x"] + box(close)["width"] <= box(page.locator(".trades-panel"))["x"] + \
        box(page.locator(".trades-panel"))["width"]  # the table fits: no Close cut off at the edge
    assert not [e for e in errors if "Content Security Policy" in e], errors  # nothing inline
    shot(page, "desktop-1280x800")
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        expect(page.locator('#summary [data-stat="exits"] .value')).to_have_text("STOP 1 · TARGET 1")
        page.screenshot(path=str(ROOT / "docs" / "desk.png"))


def test_on_a_phone_a_long_option_symbol_stays_clear_of_close_and_the_chart_opens_from_the_card(
        service_factory, browser: Browser):
    service = service_factory()
    service.price(54010, token="99926009")  # BANKNIFTY
    page = browser.new_context(**PHONE, color_scheme="dark").new_page()
    signed_in(page, service)
    reply = service.alert(symbolname="BANKNIFTY", signal="buy", price=54000, type="option", strategyname="weekly-opt",
                          lots=1, stoploss={"type": "points", "value": 20})
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    trade = service.wait_trade(trade_id, lambda t: t["state"] == "OPEN" and t["stop"] is not None,
                               what="the option open and armed")["trade"]
    assert len(trade["tradingsymbol"]) >= 22, trade["tradingsymbol"]
    symbol = cell(page, trade_id, "symbol")
    expect(symbol.locator(".symbol")).to_have_text(trade["tradingsymbol"])
    close = row(page, trade_id).locator("button.close")
    expect(close).to_be_visible()
    card = box(row(page, trade_id))
    for part in (symbol, symbol.locator(".symbol"), symbol.locator(".strategy")):
        assert not overlap(box(part), box(close)), part
        assert box(part)["x"] + box(part)["width"] <= card["x"] + card["width"] + 0.5, part
    assert box(close)["height"] >= 44  # a thumb's target
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for control in ("#halt-control", "#flatten", '.tab[data-view="alerts"]'):  # in the dock at the bottom
        found = box(page.locator(control))
        assert found["y"] > 844 / 2 and found["y"] + found["height"] <= 844, control
    shot(page, "phone-option-card")

    expect(page.locator("#chart-panel")).to_be_hidden()
    row(page, trade_id).locator("button.chart-open").click()
    expect(page.locator("#chart-panel")).to_be_visible()
    expect(page.locator("#chart")).to_have_attribute("data-trade-id", str(trade_id))
    expect(page.locator('#chart [data-line="stop"]')).to_have_attribute("data-value", str(trade["stop"]))
    sheet = box(page.locator("#chart-panel"))
    assert sheet["y"] + sheet["height"] <= 844 + 0.5
    shot(page, "phone-chart")
    page.locator("#chart-done").click()
    expect(page.locator("#chart-panel")).to_be_hidden()


def test_the_operator_is_named_and_a_viewer_gets_no_close_halt_or_flatten(service_factory, browser: Browser,
                                                                            tmp_path):
    path = tmp_path / "operators.json"
    path.write_text('{"operators": {}, "tokens": {}}')
    book = OperatorBook(path)
    book.set_operator("asha", "trader", "asha-trades-all-day")
    book.set_operator("vik", "viewer", "vik-only-watches")
    service = service_factory(OPERATORS_FILE=str(path))
    service.price(800)
    trader = browser.new_context(viewport=DESKTOP).new_page()
    signed_in(trader, service, name="asha", password="asha-trades-all-day")
    expect(trader.locator('#operator [data-field="name"]')).to_have_text("asha")
    expect(trader.locator('#operator [data-field="role"]')).to_have_text("trader")
    trade_id = open_trade(service, stoploss=STOP_10, quantity=1)
    expect(row(trader, trade_id).locator("button.close")).to_be_visible()
    for control in ("#halt-control", "#flatten"):
        expect(trader.locator(control)).to_be_visible()

    for context in (browser.new_context(viewport=DESKTOP), browser.new_context(**PHONE)):
        viewer = context.new_page()
        signed_in(viewer, service, name="vik", password="vik-only-watches")
        expect(viewer.locator('#operator [data-field="name"]')).to_have_text("vik")
        expect(viewer.locator('#operator [data-field="role"]')).to_have_text("viewer")
        expect(cell(viewer, trade_id, "stop")).to_have_text("790.00")
        expect(row(viewer, trade_id).locator("button.close")).to_be_hidden()
        for control in ("#halt-control", "#halt", "#flatten"):
            expect(viewer.locator(control)).to_be_hidden()
        refused = viewer.evaluate("""() => fetch("/halt", {method: "POST", headers: {"Content-Type": "application/json"},
                                                          body: JSON.stringify({halted: true})}).then((r) => r.status)""")
        assert refused == 403  # the server refuses anyway
        shot(viewer, f"viewer-{viewer.viewport_size['width']}")


def test_the_login_form_says_when_the_address_must_wait(service_factory, browser: Browser):
    service = service_factory()
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.set_default_timeout(15_000)
    page.goto(service.url + "/")
    error = page.locator("#login-error")
    for _ in range(5):
        page.fill("#operator-name", "demo")
        page.fill("#password", "not the password")
        page.click("#login-form button[type=submit]")
        expect(error).to_be_visible()  # the reply came
        expect(error).to_have_text("That name and password were not accepted.")
        page.evaluate("document.getElementById('login-error').hidden = true")
    page.fill("#operator-name", "demo")
    page.fill("#password", "paper-demo")  # right, but the address made too many failed attempts
    page.click("#login-form button[type=submit]")
    expect(error).to_have_text(re.compile(r"^Too many failed attempts: try again in \d+ s\.$"))
    expect(page.locator("#desk")).to_be_hidden()
