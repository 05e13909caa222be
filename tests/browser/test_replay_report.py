"""The replay's report.html, made from the shipped sample session, in Chromium with the network off:
every chart drawn by plotly (its SVG, one trace per series), the totals table, no console errors."""
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser

from service.cli import main
from tests.browser.pages import DESKTOP, shot

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "replay-sample"


def test_the_report_opens_offline_and_every_chart_renders(browser: Browser, tmp_path):
    out = tmp_path / "out"
    assert main(["replay", "--ticks", str(SAMPLE / "ticks"), "--trades", str(SAMPLE / "tickguard.db"),
                 "--variants", str(SAMPLE / "variants.json"), "--slippage", "ticks:1", "--out", str(out)]) == 0
    context = browser.new_context(viewport=DESKTOP)
    requests: list[str] = []
    context.route("**/*", lambda route: (requests.append(route.request.url),
                                         route.continue_() if route.request.url.startswith("file:") else route.abort()))
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto((out / "report.html").as_uri())
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 7")
    charts = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => ({
        id: plot.id, svg: plot.querySelectorAll('svg.main-svg').length,
        traces: plot.querySelectorAll('.scatterlayer .trace').length, data: plot.data.length,
        drawn: [...plot.querySelectorAll('.scatterlayer .trace path.js-line, .scatterlayer .trace path.point')]
                 .filter(path => (path.getAttribute('d') || '').length > 2).length}))""")
    assert [c["id"] for c in charts] == ["equity"] + [f"trade-chart-{n}" for n in range(1, 7)]
    for chart in charts:
        assert chart["svg"] >= 1 and chart["traces"] == chart["data"] and chart["drawn"] >= 2, chart
    equity = charts[0]
    assert equity["data"] == 4  # one curve per variant: live and the sample's three
    assert page.locator("#totals tr").count() == 5
    assert page.locator("#trade-3 .trade-rows").inner_text().count("STOP") >= 3  # the gap through the short's stop
    assert errors == []
    assert all(url.startswith("file:") for url in requests), requests
    shot(page, "replay-report", full_page=False)
