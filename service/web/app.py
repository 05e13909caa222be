"""tickguard's Starlette app: the webhook, the read API, the operator's controls, health and metrics,
the browser feed and the dashboard. Errors become replies once (`errors.py`).

Every route but `/healthz` needs the webhook secret (an `X-Webhook-Secret` header, a `token` query
parameter, or — on `/opentrade` only — a `token` body field).
"""
from __future__ import annotations

import contextlib

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from service.alerts.chartink import load_chartink_scans
from service.runtime import Runtime
from service.settings import Settings
from service.web import api, dashboard, desk, openapi
from service.web.alerts_api import list_alerts
from service.web.allowlist import AllowList, parse_networks
from service.web.chartink import chartink
from service.web.csv_export import trades_csv
from service.web.errors import EXCEPTION_HANDLERS
from service.web.feed import FeedHub, trades_feed
from service.web.webhook import opentrade

__all__ = ["create_app"]


def create_app(settings: Settings, runtime: Runtime | None = None) -> Starlette:
    runtime = runtime or Runtime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        try:
            await runtime.start()
        except BaseException:
            await runtime.stop()  # close what had opened before the failure
            raise
        feed = app.state.feed = FeedHub(runtime)
        await feed.start()
        try:
            yield
        finally:
            await feed.stop()
            await runtime.stop()

    routes = [
        Route("/opentrade", opentrade, methods=["POST"]),
        Route("/chartink", chartink, methods=["POST"]),
        Route("/trades", api.secured(api.list_trades), methods=["GET"]),
        Route("/trades.csv", api.secured(trades_csv), methods=["GET"]),
        Route("/trades/{trade_id}", api.secured(api.get_trade), methods=["GET"]),
        Route("/trades/{trade_id}/prices", api.secured(desk.trade_prices), methods=["GET"]),
        Route("/alerts", api.secured(list_alerts), methods=["GET"]),
        Route("/desk/summary", api.secured(desk.desk_summary), methods=["GET"]),
        Route("/trades/{trade_id}/close", api.secured(api.close_trade), methods=["POST"]),
        Route("/halt", api.secured(api.halt), methods=["GET", "POST"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/metrics", api.secured(api.metrics), methods=["GET"]),
        Route("/openapi.json", api.secured(openapi.document), methods=["GET"]),
        WebSocketRoute("/ws/trades", trades_feed),
        *dashboard.routes(),
    ]
    allowlist = Middleware(AllowList, networks=parse_networks(settings.webhook_allowlist),
                           trusted_proxies=parse_networks(settings.trusted_proxies, "TRUSTED_PROXIES"))
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[allowlist], exception_handlers=EXCEPTION_HANDLERS)
    app.state.chartink_scans = load_chartink_scans(settings.chartink_scans)  # a bad file fails at start
    app.state.runtime = runtime
    return app
