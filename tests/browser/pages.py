"""What the browser tests share: Chromium's launch, signing in, and finding a trade's row and cells."""
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from service.settings import PAPER_OPERATOR, PAPER_OPERATOR_PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "desk"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def signed_in(page: Page, service, url: str | None = None, name: str = PAPER_OPERATOR,
              password: str = PAPER_OPERATOR_PASSWORD) -> None:
    """The desk of `service` (at `url`, its own by default), signed in through the login form (as the
    paper mode's demo trader unless told), and its feed live."""
    url = url or service.url
    page.set_default_timeout(15_000)
    page.goto(url + "/")
    page.fill("#operator-name", name)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def row(page: Page, trade_id: int, table: str = "trades"):
    return page.locator(f'#{table} tr[data-trade-id="{trade_id}"]')


def cell(page: Page, trade_id: int, field: str, table: str = "trades"):
    return row(page, trade_id, table).locator(f'[data-field="{field}"]')


def open_trade(service, **alert) -> int:
    reply = service.alert(**{"price": 800, **alert})
    assert reply.status_code == 202, reply.text
    (trade_id,) = reply.json()["trades"]
    return trade_id


def shot(page: Page, name: str, **options) -> None:
    """A screenshot into `test-output/desk/` (ignored by git)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), **options)
