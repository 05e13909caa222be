"""The dashboard in headless Chromium against the real app and a paper exchange.

Screenshots go to `test-output/dashboard/` at the repository root (ignored by git).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.browser.pages import cell, open_trade, row, signed_in

OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "dashboard"
STOP_10 = {"type": "points", "value": 10}
TRAIL = {"type": "points", "value": 4, "activation": {"type": "points", "value": 2}}

# Cut the page's socket and resolve once the connection badge has said so.
DROP_FEED = """() => new Promise((resolve) => {
  const badge = document.getElementById("connection");
  const watch = new MutationObserver(() => {
    if (badge.dataset.state === "reconnecting") { watch.disconnect(); resolve(badge.textContent); }
  });
  watch.observe(badge, { attributes: true, childList: true });
  tickguard.state.socket.close();
})"""


def test_watch_trail_stop_out_and_close_from_the_dashboard(service_factory, browser: Browser):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    service = service_factory()
    service.price(800)
    desktop = browser.new_context(viewport={"width": 1280, "height": 800})
    page = desktop.new_page()
    page.set_default_timeout(15_000)
    page.goto(service.url + "/")

    expect(page.locator("#login-form")).to_be_visible()
    page.fill("#operator-name", "demo")
    page.fill("#password", "not the password")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_be_visible()
    signed_in(page, service)
    expect(page.locator('#operator [data-field="name"]')).to_have_text("demo")
    expect(page.locator('#operator [data-field="role"]')).to_have_text("trader")
    cookie = next(c for c in desktop.cookies() if c["name"] == "tickguard_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    trailed = open_trade(service, stoploss=STOP_10, trail=TRAIL, quantity=2)
    expect(row(page, trailed)).to_be_visible()
    expect(cell(page, trailed, "status")).to_have_text("OPEN")
    expect(cell(page, trailed, "stop")).to_have_text("790.00")
    expect(cell(page, trailed, "broker")).to_have_text("—")  # BROKER_STOP is off in paper mode unless set
    expect(cell(page, trailed, "broker")).to_have_attribute("title", "no broker stop: BROKER_STOP is off")
    other = open_trade(service, stoploss=STOP_10, target={"type": "points", "value": 40}, quantity=3,
                       strategyname="s2")
    expect(cell(page, other, "status")).to_have_text("OPEN")
    expect(cell(page, other, "target")).to_have_text("840.00")

    row(page, trailed).locator('[data-field="symbol"]').click()
    chart = page.locator("#chart")
    expect(chart).to_have_attribute("data-trade-id", str(trailed))
    stop_line = chart.locator('path[data-line="stop"]')
    expect(stop_line).to_have_attribute("data-value", "79000")

    service.price(806)
    expect(cell(page, trailed, "ltp")).to_have_text("806.00")
    expect(cell(page, trailed, "pnl")).to_have_text("+12.00")
    expect(cell(page, trailed, "pnl")).to_have_class("num profit")
    expect(cell(page, trailed, "stop")).to_have_text("802.00")
    expect(stop_line).to_have_attribute("data-value", "80200")

    page.evaluate(DROP_FEED)  # the page notices, says so, and reconnects by itself
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    service.price(810)
    expect(cell(page, trailed, "ltp")).to_have_text("810.00")
    expect(cell(page, trailed, "pnl")).to_have_text("+20.00")
    expect(stop_line).to_have_attribute("data-value", "80600")
    expect(cell(page, other, "pnl")).to_have_text("+30.00")
    expect(page.locator('#events li[data-kind="stop_moved"]')).to_have_count(2)
    page.screenshot(path=str(OUTPUT / "desktop-1280x800.png"))

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                color_scheme="dark", device_scale_factor=2, storage_state=desktop.storage_state())
    small = phone.new_page()
    small.set_default_timeout(15_000)
    small.goto(service.url + "/")
    expect(small.locator("#connection")).to_have_attribute("data-state", "live")
    expect(cell(small, trailed, "ltp")).to_have_text("810.00")
    expect(small.locator("#trades thead")).to_be_hidden()  # cards, not a wide table
    assert small.evaluate("document.documentElement.scrollWidth") <= 390
    small.screenshot(path=str(OUTPUT / "phone-390x844.png"))
    small.screenshot(path=str(OUTPUT / "phone-390x844-full.png"), full_page=True)
    phone.close()

    service.price(805.5)  # below the trailed stop of 806
    expect(row(page, trailed)).to_have_attribute("data-state", "CLOSED")
    expect(cell(page, trailed, "status")).to_have_text("CLOSED")
    expect(cell(page, trailed, "pnl")).to_have_class("num profit")
    expect(page.locator('#events li[data-kind="exit_fired"]')).to_have_count(1)
    expect(cell(page, other, "status")).to_have_text("OPEN")

    close = row(page, other).locator("button.close")
    close.click()
    expect(close).to_have_text("Confirm")
    close.click()
    expect(row(page, other)).to_have_attribute("data-state", "CLOSED")
    expect(close).to_be_hidden()
    assert service.trade(other)["trade"]["state"] == "CLOSED"
    fired = [e for e in service.trade(other)["events"] if e["kind"] == "exit_fired"]
    assert fired[0]["data"]["reason"] == "MANUAL"

    page.click("#halt")  # the switch works with the session cookie alone
    expect(page.locator('#events li[data-kind="halt"]')).to_have_count(1)
    expect(page.locator("#halt")).to_be_checked()
    with service.client() as client:
        assert client.get("/halt").json()["halted"] is True
    page.screenshot(path=str(OUTPUT / "desktop-1280x800-closed.png"))
    desktop.close()


FUSSY = '''
"""A tick stage of the desk's own that cannot handle a fall below its floor (it raises)."""
from reactivex import operators as ops


def fussy(floor):
    def check(tick):
        if tick.ltp < floor:
            raise ValueError(f"cannot handle {tick.ltp} below {floor}")
        return tick

    return ops.map(check)
'''


def test_the_engine_plugins_are_listed_and_an_unplugged_one_is_shown(service_factory, browser: Browser, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # PLUGINS_PATH is added to it
    monkeypatch.delitem(sys.modules, "tg_browser_fussy", raising=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "tg_browser_fussy.py").write_text(FUSSY)
    plugins = [
        {"stage": "tick", "factory": "streams.examples.spike_filter:spike_filter", "kwargs": {"max_jump_pct": 5},
         "name": "spike"},
        {"stage": "tick", "factory": "tg_browser_fussy:fussy", "kwargs": {"floor": 79_500}},
    ]
    service = service_factory(PLUGINS=json.dumps(plugins), PLUGINS_PATH=str(mine))
    service.price(800)
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    signed_in(page, service)

    spike = page.locator('#plugins li[data-name="spike"]')
    fussy = page.locator('#plugins li[data-name="tg_browser_fussy:fussy"]')
    expect(page.locator("#plugins li")).to_have_count(2)
    expect(spike.locator('[data-field="stage"]')).to_have_text("tick")
    expect(spike.locator('[data-field="factory"]')).to_have_text("streams.examples.spike_filter:spike_filter")
    expect(spike.locator('[data-field="state"]')).to_have_text("running")
    expect(fussy.locator('[data-field="state"]')).to_have_text("running")
    expect(fussy.locator('[data-field="factory"]')).to_have_count(0)  # its name is its factory

    trade_id = open_trade(service, stoploss=STOP_10, quantity=1)
    expect(cell(page, trade_id, "stop")).to_have_text("790.00")
    service.price(794)  # the fussy stage raises: unplugged, and the rules go on without it
    expect(fussy).to_have_attribute("data-state", "unplugged")
    expect(fussy.locator('[data-field="state"]')).to_have_text(
        "unplugged: ValueError('cannot handle 79400 below 79500')")
    expect(spike).to_have_attribute("data-state", "running")
    expect(page.locator('#events li[data-kind="plugin_failed"]')).to_have_count(1)
    service.price(789)
    expect(row(page, trade_id)).to_have_attribute("data-state", "CLOSED")
    page.screenshot(path=str(OUTPUT / "desktop-plugins.png"), full_page=True)
    page.reload()  # a fresh snapshot says the same
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(fussy).to_have_attribute("data-state", "unplugged")


def test_a_daily_loss_halt_is_shown_live_and_after_a_restart(service_factory, paper_factory, browser: Browser,
                                                               tmp_path):
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({"accountslist": [{"accountId": "R1", "fund": 100000, "maxdailyloss": 50}]}))
    paper = paper_factory()
    service = service_factory(paper=paper, DEMO_ACCOUNTS_FILE=str(accounts))
    service.price(800)
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    signed_in(page, service)
    expect(page.locator("#halts-panel")).to_be_hidden()

    trade_id = open_trade(service, stoploss=STOP_10, quantity=10, accounts=["R1"])
    expect(cell(page, trade_id, "stop")).to_have_text("790.00")
    service.price(794)
    with service.client() as client:
        assert client.post(f"/trades/{trade_id}/close").status_code == 202
    halt = page.locator('#halts li[data-scope="account"][data-key="R1"]')
    expect(halt.locator('[data-field="reason"]')).to_have_text(
        "daily loss limit of account R1 reached: P&L -60.00 at or below -50.00")
    expect(halt.locator('[data-field="realised"]')).to_have_text("realised today -60.00")
    expect(page.locator('#events li[data-kind="loss_limit"]')).to_have_count(1)
    page.screenshot(path=str(OUTPUT / "desktop-loss-halt.png"))
    service.stop()

    service = service_factory(paper=paper, DEMO_ACCOUNTS_FILE=str(accounts))
    page.goto(service.url + "/")  # another port, the same store: the session is still good
    expect(page.locator("#login-form")).to_be_hidden()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(halt.locator('[data-field="who"]')).to_have_text("account R1")
    expect(page.locator("#halts li")).to_have_count(1)


def test_the_broker_stop_is_shown_beside_tickguards(service_factory, browser: Browser):
    service = service_factory(BROKER_STOP="backup", BROKER_STOP_MIN_S="0")
    service.price(800)
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    signed_in(page, service)
    trade_id = open_trade(service, stoploss=STOP_10, trail=TRAIL, quantity=2)
    expect(cell(page, trade_id, "stop")).to_have_text("790.00")
    expect(cell(page, trade_id, "broker")).to_have_text("788.40")  # 0.2 % behind, on the tick
    expect(cell(page, trade_id, "broker")).to_have_attribute("title", re.compile(r"^broker stop: trigger 788\.40, limit 784\.45"))
    service.price(806)  # the trail moves tickguard's stop to 802, and the broker's follows
    expect(cell(page, trade_id, "stop")).to_have_text("802.00")
    expect(cell(page, trade_id, "broker")).to_have_text("800.35")
