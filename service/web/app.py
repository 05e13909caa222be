"""tickguard's Starlette app: the webhook, the read API, the operator's controls, health and metrics,
the browser feed and the dashboard. Errors become replies once (`errors.py`).

The alert routes (`/opentrade`, `/chartink`) take the webhook secret; every other route but `/healthz`,
the page and `/login` takes an operator (service/web/auth.py).
"""
from __future__ import annotations

import contextlib

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from service.alerts.chartink import load_chartink_scans
from service.operators import OperatorBook, SessionStore, demo_book
from service.runtime import Runtime
from service.settings import PAPER_OPERATOR, PAPER_OPERATOR_PASSWORD, PAPER_OPERATOR_TOKEN, Settings
from service.startup import Startup
from service.web import api, dashboard, desk, openapi
from service.web.alerts_api import list_alerts
from service.web.allowlist import AllowList, parse_networks
from service.web.auth import LoginBrake
from service.web.chartink import chartink
from service.web.csv_export import trades_csv
from service.web.errors import EXCEPTION_HANDLERS
from service.web.feed import FeedHub, trades_feed
from service.web.readiness import NotReady
from service.web.webhook import opentrade

__all__ = ["create_app"]


def create_app(settings: Settings, runtime: Runtime | None = None) -> Starlette:
    runtime = runtime or Runtime(settings)

    startup = Startup(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await startup.begin()  # started, failed, or waiting for the broker (then it goes on in the background)
        feed = app.state.feed = FeedHub(runtime)
        if startup.readiness.failure is None:
            await feed.start()
        try:
            yield
        finally:
            await feed.stop()
            await startup.stop()

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
        Route("/metrics", api.secured(api.metrics, metrics_token=True), methods=["GET"]),
        Route("/openapi.json", api.secured(openapi.document), methods=["GET"]),
        WebSocketRoute("/ws/trades", trades_feed),
        *dashboard.routes(),
    ]
    networks = parse_networks(settings.webhook_allowlist)
    proxies = parse_networks(settings.trusted_proxies, "TRUSTED_PROXIES")
    allowlist = Middleware(AllowList, networks=networks, trusted_proxies=proxies)
    not_ready = Middleware(NotReady, readiness=startup.readiness)
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[allowlist, not_ready], exception_handlers=EXCEPTION_HANDLERS)
    app.state.chartink_scans = load_chartink_scans(settings.chartink_scans)  # a bad file fails at start
    app.state.runtime = runtime
    app.state.startup = startup
    app.state.operators = operator_book(settings)  # an unreadable file fails at start
    app.state.sessions = SessionStore(runtime.store)
    app.state.login_brake = LoginBrake()
    app.state.client_address = AllowList(None, (), proxies).client_address  # /login's brake: per real client
    return app


def operator_book(settings: Settings) -> OperatorBook:
    """OPERATORS_FILE's operators; in paper mode without one, the demo operator."""
    if settings.operators_file:
        return OperatorBook(settings.operators_file)
    assert not settings.live, "live settings without OPERATORS_FILE are refused when loaded"
    return demo_book(PAPER_OPERATOR, PAPER_OPERATOR_PASSWORD, PAPER_OPERATOR_TOKEN)
