"""Errors a broker adapter raises; each carries the broker's `errorcode` and `message`.

    BrokerError
    ├── LoginFailed          the login itself was refused (credentials, TOTP, API key)
    ├── SessionExpired       a token the adapter could not renew
    ├── OrderRefused         the broker refused a request synchronously (field, when known)
    ├── RateLimited          the broker's rate limiter answered, and retrying did not help
    ├── BrokerUnavailable    network error, timeout or 5xx
    ├── PlacementUnknown     placeOrder timed out or met a 5xx and no order with its tag was found: in doubt
    ├── EntryExpired         an entry waited longer than its time-to-live for an order slot (never sent)
    └── NotMarketData        a market-data client was asked for a route outside market data (never sent)
"""
from __future__ import annotations

__all__ = [
    "BrokerError", "LoginFailed", "SessionExpired", "OrderRefused", "RateLimited", "BrokerUnavailable",
    "PlacementUnknown", "EntryExpired", "NotMarketData", "expired_reason",
]


class BrokerError(Exception):
    def __init__(self, message: str, errorcode: str = "", *, route: str = "") -> None:
        self.message = message
        self.errorcode = errorcode
        self.route = route
        code = f" [{errorcode}]" if errorcode else ""
        where = f" ({route})" if route else ""
        super().__init__(f"{message}{code}{where}")


class LoginFailed(BrokerError):
    pass


class SessionExpired(BrokerError):
    pass


class OrderRefused(BrokerError):
    def __init__(self, message: str, errorcode: str = "", *, route: str = "", field: str | None = None) -> None:
        super().__init__(message, errorcode, route=route)
        self.field = field


class RateLimited(BrokerError):
    pass


class BrokerUnavailable(BrokerError):
    pass


class PlacementUnknown(BrokerError):
    def __init__(self, message: str, *, tag: str, route: str = "") -> None:
        super().__init__(message, route=route)
        self.tag = tag


def expired_reason(waited_s: float) -> str:
    """Why an entry expired instead of trading late (the `expired` event's reason)."""
    return f"entry order expired after waiting {waited_s:.2f} s for the broker's rate limit"


class EntryExpired(BrokerError):
    def __init__(self, waited_s: float) -> None:
        super().__init__(expired_reason(waited_s))
        self.waited_s = waited_s


class NotMarketData(BrokerError):
    """A client built for market data only (MARKET_DATA=live) refuses every other route before sending."""

    def __init__(self, route: str, clientcode: str) -> None:
        super().__init__(f"{clientcode} is a market-data login: {route} is not a market-data route and was not sent",
                         route=route)
        self.clientcode = clientcode
