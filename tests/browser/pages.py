"""What the browser tests share: Chromium's launch, signing in, and finding a trade's row and cells."""
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.support.service import SECRET

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "desk"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def signed_in(page: Page, service, url: str | None = None) -> None:
    """The desk of `service` (at `url`, its own by default), signed in and its feed live."""
    url = url or service.url
    page.set_default_timeout(15_000)
    page.goto(url + "/")
    expect(page.locator("#login-form")).to_be_visible()
    reply = page.request.post(url + "/login", data={"secret": SECRET})
    assert reply.ok, reply.text()
    page.reload()
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
