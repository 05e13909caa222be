"""The desk's views that read the service's desk API, in headless Chromium against the real app and a
paper exchange: the live summary strip, the history with its pages and CSV export, the alerts view.

Screenshots go to `test-output/desk/` (ignored by git).
"""
from __future__ import annotations

import csv
import io
import re

from playwright.sync_api import Browser, Page, expect

from tests.browser.pages import DESKTOP, PHONE, cell, open_trade, row, shot, signed_in
from tests.support.service import SECRET

STOP_10 = {"type": "points", "value": 10}


def signed_text(paise: int) -> str:
    """As the desk writes a P&L: "+1,234.50", "-9.00"."""
    sign = "-" if paise < 0 else ("+" if paise > 0 else "")
    whole, part = divmod(abs(paise), 100)
    groups = str(whole)
    if len(groups) > 3:  # Indian grouping: 12,34,567
        head, tail = groups[:-3], groups[-3:]
        head = ",".join(re.findall(r"\d{1,2}(?=(?:\d{2})*$)", head))
        groups = f"{head},{tail}"
    return f"{sign}{groups}.{part:02d}"


def stat(page: Page, name: str):
    return page.locator(f'#summary [data-stat="{name}"] .value')


def test_the_summary_strip_follows_the_paper_price_exits_and_halts(service_factory, browser: Browser):
    service = service_factory()
    service.price(800)
    page = browser.new_context(viewport=DESKTOP).new_page()
    signed_in(page, service)
    expect(stat(page, "open_trades")).to_have_text("0")
    expect(stat(page, "exits")).to_have_text("none")
    expect(stat(page, "halted")).to_have_text("none")
    expect(stat(page, "net")).to_have_text("0.00")  # nothing traded: no P&L, no charges

    kept = open_trade(service, stoploss=STOP_10, quantity=2)
    closed = open_trade(service, stoploss=STOP_10, quantity=3, strategyname="s2")
    expect(cell(page, closed, "stop")).to_have_text("790.00")
    expect(stat(page, "open_trades")).to_have_text("2")
    expect(stat(page, "stream")).to_have_text("live")
    service.price(804)  # the strip moves with the price, no reload
    expect(stat(page, "open_pnl")).to_have_text("+20.00")
    expect(stat(page, "open_pnl")).to_have_class("value profit")
    service.price(797)
    expect(stat(page, "open_pnl")).to_have_text("-15.00")
    expect(stat(page, "open_pnl")).to_have_class("value loss")
    expect(stat(page, "unprotected")).to_have_text("0")

    with service.client() as client:
        assert client.post(f"/trades/{closed}/close").status_code == 202
    expect(stat(page, "realised")).to_have_text("-9.00")
    expect(stat(page, "exits")).to_have_text("MANUAL 1")
    expect(stat(page, "open_trades")).to_have_text("1")
    expect(stat(page, "open_pnl")).to_have_text("-6.00")
    expect(cell(page, closed, "exit")).to_have_text("797.00")
    expect(cell(page, closed, "exit_reason")).to_have_text("MANUAL")
    expect(cell(page, kept, "exit_reason")).to_have_text("—")
    with service.client() as client:  # net = realised + open − every charge, as the API says it
        net = client.get("/desk/summary").json()["net_pnl"]
    assert net is not None and net < -9_00 - 6_00  # the charges come off
    expect(stat(page, "net")).to_have_text(signed_text(net))
    expect(page.locator('#summary [data-stat="net"]')).to_have_attribute("title", re.compile(r"realised \+ open − charges \d+\.\d\d"))

    page.click("#halt")
    expect(stat(page, "halted")).to_have_text("all entries")
    expect(stat(page, "halted")).to_have_class("value loss")
    shot(page, "desktop-summary")
    phone = browser.new_context(**PHONE, storage_state=page.context.storage_state()).new_page()
    phone.goto(service.url + "/")
    expect(stat(phone, "open_pnl")).to_have_text("-6.00")
    strip = phone.locator("#summary").bounding_box()
    assert strip is not None and strip["width"] <= 390
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(phone, "phone-summary")


def test_history_pages_filters_and_exports_the_days_trades_as_csv(service_factory, browser: Browser, tmp_path):
    service = service_factory()
    service.price(800)
    page = browser.new_context(viewport=DESKTOP, accept_downloads=True).new_page()
    signed_in(page, service)
    ids = [open_trade(service, stoploss=STOP_10, quantity=1, strategyname="s1" if n % 3 else "s2", id=f"h{n}")
           for n in range(12)]
    for trade_id in ids:
        expect(cell(page, trade_id, "stop")).to_have_text("790.00")
    service.price(803)
    expect(cell(page, ids[-1], "ltp")).to_have_text("803.00")

    flatten = page.locator("#flatten")  # two taps: everything closes, new entries halted
    flatten.click()
    expect(flatten).to_have_text("Confirm")
    flatten.click()
    for trade_id in ids:
        expect(row(page, trade_id)).to_have_attribute("data-state", "CLOSED")
    expect(page.locator("#halt")).to_be_checked()

    page.click('.tab[data-view="history"]')
    expect(page.locator("#history tbody tr")).to_have_count(12)
    newest = ids[-1]
    expect(cell(page, newest, "exit", "history")).to_have_text("803.00")
    expect(cell(page, newest, "pnl", "history")).to_have_text("+3.00")
    net = service.trade(newest)["trade"]["net_pnl"]
    expect(cell(page, newest, "net", "history")).to_have_text(signed_text(net))  # +3.00 less its charges
    expect(cell(page, newest, "net", "history")).to_have_attribute("title", re.compile(r"^charges \d+\.\d\d: brokerage "))
    reason = cell(page, newest, "exit_reason", "history").inner_text()
    assert reason not in ("", "—")
    page.fill("#history-strategy", "s2")
    page.click("#history-form button[type=submit]")
    expect(page.locator("#history tbody tr")).to_have_count(4)
    page.fill("#history-strategy", "")
    page.select_option("#history-rows", "10")
    page.click("#history-form button[type=submit]")
    expect(page.locator("#history tbody tr")).to_have_count(10)
    expect(page.locator("#history tbody tr").first).to_have_attribute("data-trade-id", str(newest))
    page.click("#history-more")  # the older page follows the first
    expect(page.locator("#history tbody tr")).to_have_count(12)
    expect(page.locator("#history-more")).to_be_hidden()
    page.fill("#history-day", "2001-01-01")
    page.click("#history-form button[type=submit]")
    expect(page.locator("#history-note")).to_have_text("No trades for these filters.")
    shot(page, "desktop-history")

    page.fill("#history-day", page.evaluate("tickguard.istDay()"))
    page.dispatch_event("#history-day", "change")
    with page.expect_download() as download:
        page.click("#csv")
    path = tmp_path / "trades.csv"
    download.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert [int(r["id"]) for r in rows] == sorted(ids)
    assert {r["state"] for r in rows} == {"CLOSED"}
    assert rows[-1]["entry"] == "800.00" and rows[-1]["exit"] == "803.00" and rows[-1]["realised_pnl"] == "3.00"
    assert rows[-1]["exit_reason"] == reason
    newest_view = service.trade(newest)["trade"]
    assert rows[-1]["charges"] == newest_view["charges"]["total_rupees"] and rows[-1]["net_pnl"] == newest_view["net_pnl_rupees"]
    assert list(rows[0]) == ["id", "created", "account", "strategy", "symbol", "side", "quantity", "entry", "exit",
                             "exit_reason", "realised_pnl", "charges", "net_pnl", "state"]


def test_the_alerts_view_shows_a_refused_alert_with_its_reason_and_no_secret(service_factory, browser: Browser):
    service = service_factory()
    service.price(800)
    page = browser.new_context(viewport=DESKTOP).new_page()
    signed_in(page, service)
    accepted = open_trade(service, stoploss=STOP_10, quantity=1)
    expect(cell(page, accepted, "stop")).to_have_text("790.00")
    with service.client() as client:
        assert client.post("/halt", json={"halted": True, "reason": "lunch"}).status_code == 200
    refused = service.alert(price=800, strategyname="s9", token=SECRET)
    assert refused.status_code == 409, refused.text

    page.click('.tab[data-view="alerts"]')
    items = page.locator("#alerts li")
    expect(items).to_have_count(2)
    no = page.locator('#alerts li[data-status="refused"]')
    expect(no.locator('[data-field="status"]')).to_have_text("refused")
    expect(no.locator('[data-field="reason"]')).to_have_text("new entries are halted (operator): lunch")
    expect(no.locator('[data-field="source"]')).not_to_have_text("—")
    expect(no.locator('[data-field="body"]')).to_contain_text('"strategyname":"s9"')
    assert SECRET not in page.locator("#alerts").inner_text()
    yes = page.locator('#alerts li[data-status="accepted"]')
    expect(yes.locator('[data-field="trades"]')).to_have_text(f"#{accepted}")
    page.select_option("#alerts-status", "refused")
    page.click("#alerts-form button[type=submit]")
    expect(items).to_have_count(1)
    expect(items.first).to_have_attribute("data-status", "refused")
    shot(page, "desktop-alerts")

    phone = browser.new_context(**PHONE, storage_state=page.context.storage_state()).new_page()
    phone.goto(service.url + "/")
    expect(phone.locator("#connection")).to_have_attribute("data-state", "live")
    phone.click('.tab[data-view="alerts"]')
    expect(phone.locator('#alerts li[data-status="refused"] [data-field="reason"]')).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(phone, "phone-alerts")


def test_the_chart_keeps_its_line_over_a_reload_and_draws_an_underlyings_stop_on_the_underlying(
        service_factory, browser: Browser):
    service = service_factory()
    service.price(800)
    service.price(24000, token="99926000")  # NIFTY
    page = browser.new_context(viewport=DESKTOP).new_page()
    signed_in(page, service)
    equity = open_trade(service, stoploss=STOP_10, quantity=1)
    expect(cell(page, equity, "stop")).to_have_text("790.00")
    for price in (801, 802, 803):
        service.price(price)
        expect(cell(page, equity, "ltp")).to_have_text(f"{price:.2f}")
    page.reload()  # the line before the reload comes back from GET /trades/{id}/prices
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    row(page, equity).locator('[data-field="symbol"]').click()
    chart = page.locator("#chart")
    expect(chart).to_have_attribute("data-trade-id", str(equity))
    expect(chart).to_have_attribute("data-points", re.compile(r"^([3-9]|\d\d+)$"))

    reply = service.alert(symbolname="NIFTY", signal="buy", price=24000, type="option", strategyname="opt", lots=1,
                          stoploss={"type": "points", "value": 50}, stop_basis="underlying")
    assert reply.status_code == 202, reply.text
    (option,) = reply.json()["trades"]
    expect(cell(page, option, "stop")).to_have_text("23,950.00")  # on NIFTY
    row(page, option).locator('[data-field="symbol"]').click()
    expect(page.locator("#chart-title")).to_contain_text("on its underlying")
    expect(chart.locator('[data-line="stop"]')).to_have_attribute("data-value", "2395000")
    expect(chart.locator('[data-line="entry"]')).to_have_attribute("data-value", "2400000")
    service.price(24020, token="99926000")  # the line follows NIFTY, not the premium
    expect(chart.locator('[data-line="ltp"]')).to_have_attribute("data-value", "2402000")
    close, panel = row(page, option).locator("button.close").bounding_box(), page.locator(".trades-panel").bounding_box()
    assert close and panel and close["x"] + close["width"] <= panel["x"] + panel["width"]  # a long symbol: no Close cut off
    shot(page, "desktop-underlying")
