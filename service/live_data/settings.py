"""MARKET_DATA: where paper mode's market data comes from, and the rules that keep its login away from orders.

    MARKET_DATA=paper   (default) ticks, prices and candles from the paper exchange, as its orders
    MARKET_DATA=live    from a real SmartAPI login of its own (MARKET_DATA_USER, MARKET_DATA_PASS,
                        MARKET_DATA_KEY, MARKET_DATA_TOTP_SECRET) at MARKET_DATA_ROOT (default Angel
                        One's); orders still go to the paper exchange, which fills them at those prices

Refused, every problem at once: MARKET_DATA=live outside paper mode; a credential missing (never
taken from the order login's); a MARKET_DATA_* setting while MARKET_DATA=paper (it would do nothing);
and anything that could send the paper orders elsewhere than a paper exchange — SMARTAPI_ROOT and the
SMARTAPI socket URLs (the order login's endpoints are the paper exchange's, PAPER_URL or the embedded
one), a PAPER_URL on Angel One's hosts or on the market-data root's host and port.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

__all__ = ["CREDENTIALS", "market_data_problems", "stream_url_for", "ANGEL_DOMAINS", "on_angel_one"]

CREDENTIALS = ("market_data_user", "market_data_pass", "market_data_key", "market_data_totp_secret")
ENDPOINTS = ("market_data_root", "market_data_stream_url")
ORDER_ENDPOINTS = ("smartapi_root", "smartapi_stream_url", "smartapi_order_update_url")
ANGEL_DOMAINS = ("angelone.in", "angelbroking.com")


def stream_url_for(rest_root: str, live_root: str, live_stream_url: str) -> str:
    """The smart-stream URL of a REST root, as the adapter's endpoints pair them: Angel One's stream for
    its own root, else `ws(s)://host:port/smart-stream` beside the root (the paper exchange's layout)."""
    if rest_root.rstrip("/") == live_root.rstrip("/"):
        return live_stream_url
    return rest_root.rstrip("/").replace("http", "ws", 1) + "/smart-stream"


def _origin(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(parts.scheme)


def _angel_host(host: str) -> bool:
    return any(host == domain or host.endswith("." + domain) for domain in ANGEL_DOMAINS)


def on_angel_one(url: str) -> bool:
    """Whether `url` is on Angel One's hosts (the real broker)."""
    return _angel_host(_origin(url)[0])


def market_data_problems(values: dict[str, Any], mode: str, live_root: str,
                         totp_ok: Any) -> list[tuple[str, str]]:
    """(SETTING, reason) for each problem of the MARKET_DATA settings in `values` (read, not yet a Settings)."""
    problems: list[tuple[str, str]] = []
    if values.get("market_data", "paper") != "live":
        for name in (*CREDENTIALS, *ENDPOINTS):
            if values.get(name):
                problems.append((name.upper(), "only read with MARKET_DATA=live"))
        return problems
    if mode == "live":
        problems.append(("MARKET_DATA", "MARKET_DATA=live is for paper mode (TICKGUARD_MODE=paper): live mode "
                                        "reads its market data from its own broker login"))
    for name in CREDENTIALS:
        if not values.get(name):
            problems.append((name.upper(), "required when MARKET_DATA=live: the market-data login's own, "
                                           "never taken from the order login"))
    secret = values.get("market_data_totp_secret")
    if secret and not totp_ok(secret):
        problems.append(("MARKET_DATA_TOTP_SECRET", "not a usable TOTP secret: base32 (A-Z, 2-7), at least 23 characters"))
    root = values.get("market_data_root") or live_root
    if not root.startswith(("http://", "https://")):
        problems.append(("MARKET_DATA_ROOT", f"expected an http(s) URL, got {root!r}"))
    stream = values.get("market_data_stream_url")
    if stream and not stream.startswith(("ws://", "wss://")):
        problems.append(("MARKET_DATA_STREAM_URL", f"expected a ws(s) URL, got {stream!r}"))
    for name in ORDER_ENDPOINTS:
        if values.get(name):
            problems.append((name.upper(), "must stay empty when MARKET_DATA=live: orders go to the paper exchange "
                                           "(PAPER_URL, or the one started beside the service)"))
    paper_url = values.get("paper_url")
    if paper_url:
        host, port = _origin(paper_url)
        if _angel_host(host) or (host, port) == _origin(root):
            problems.append(("PAPER_URL", f"{host} is the market-data broker, not a paper exchange: orders must "
                                          "never reach it when MARKET_DATA=live"))
    return problems
