"""Who may use the desk, at 1280×800: an operator's close recorded with their name, the webhook secret
refused everywhere but the alert routes, and a restart that keeps the operator signed in and the desk
live again without a new sign-in (the page at a fixed address in front of the service: a relay)."""
from __future__ import annotations

from playwright.sync_api import Browser, expect

from service.operators import OperatorBook
from tests.browser.pages import DESKTOP, cell, open_trade, row, shot, signed_in
from tests.support.relay import Relay
from tests.support.service import SECRET

STOP_10 = {"type": "points", "value": 10}
PASSWORD = "a desk password"


def operators(tmp_path) -> str:
    path = tmp_path / "operators.json"
    path.write_text('{"operators": {}, "tokens": {}}')
    OperatorBook(path).set_operator("asha", "trader", PASSWORD)
    return str(path)


def test_a_close_from_the_desk_is_recorded_with_the_operators_name(service_factory, browser: Browser, tmp_path):
    service = service_factory(OPERATORS_FILE=operators(tmp_path))
    service.price(800)
    page = browser.new_context(viewport=DESKTOP).new_page()
    signed_in(page, service, name="asha", password=PASSWORD)
    expect(page.locator("#operator")).to_contain_text("asha")
    trade_id = open_trade(service, stoploss=STOP_10, quantity=2)
    expect(cell(page, trade_id, "status")).to_have_text("OPEN")
    close = row(page, trade_id).locator("button.close")
    close.click()
    expect(close).to_have_text("Confirm")
    close.click()
    expect(cell(page, trade_id, "status")).to_have_text("CLOSED")
    expect(page.locator('#events li[data-kind="close_requested"]')).to_contain_text("by asha")
    shot(page, "desktop-close-by-operator")
    # the demo operator does not exist with an OPERATORS_FILE: read the trade as the page does, as asha
    events = page.evaluate("async (id) => (await (await fetch(`/trades/${id}`)).json()).events", trade_id)
    assert [e["data"]["operator"] for e in events if e["kind"] == "close_requested"] == ["asha"]


def test_the_webhook_secret_opens_neither_the_desk_nor_its_controls(service_factory, browser: Browser):
    service = service_factory()
    service.price(800)
    trade_id = open_trade(service, stoploss=STOP_10, quantity=1)
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.set_default_timeout(15_000)
    page.goto(service.url + "/")
    page.fill("#operator-name", "demo")
    page.fill("#password", SECRET)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_be_visible()
    expect(page.locator("#login-form")).to_be_visible()
    statuses = page.evaluate("""async ([secret, id]) => {
      const asked = [["POST", "/halt", {halted: true}], ["POST", `/trades/${id}/close`, {}], ["GET", "/trades", null]];
      const out = [];
      for (const [method, path, body] of asked) {
        const reply = await fetch(path + "?token=" + secret, {method, headers: {"X-Webhook-Secret": secret,
          "Authorization": "Bearer " + secret, "Content-Type": "application/json"},
          body: body === null ? undefined : JSON.stringify(body)});
        out.push(reply.status);
      }
      return out;
    }""", [SECRET, trade_id])
    assert statuses == [401, 401, 401]
    assert service.trade(trade_id)["trade"]["state"] == "OPEN"
    shot(page, "desktop-webhook-secret-refused")


def test_a_restart_keeps_the_operator_signed_in_and_the_desk_live_again(service_factory, browser: Browser):
    service = service_factory()
    service.price(800)
    trade_id = open_trade(service, stoploss=STOP_10, quantity=1)
    relay = Relay(int(service.url.rsplit(":", 1)[1])).start()
    try:
        page = browser.new_context(viewport=DESKTOP).new_page()
        signed_in(page, service, url=relay.url)
        expect(cell(page, trade_id, "status")).to_have_text("OPEN")
        relay.cut()
        service.stop()
        expect(page.locator("#connection")).not_to_have_attribute("data-state", "live")
        again = service_factory(paper=service.paper)  # the same store, a new process's memory
        relay.upstream = ("127.0.0.1", int(again.url.rsplit(":", 1)[1]))
        relay.start()  # the same address as before
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        expect(page.locator("#login-form")).to_be_hidden()
        expect(cell(page, trade_id, "status")).to_have_text("OPEN")
        shot(page, "desktop-after-restart")
    finally:
        relay.cut()
