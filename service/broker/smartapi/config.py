"""What the SmartAPI adapter needs to know: where to connect and as whom."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SmartApiConfig", "StreamCredentials", "EXCHANGE_TYPES", "EXCHANGE_NAMES"]

# smart-stream exchangeType codes <-> REST exchange names
EXCHANGE_TYPES = {"NSE": 1, "NFO": 2, "BSE": 3, "BFO": 4, "MCX": 5, "NCDEX": 7, "CDS": 13}
EXCHANGE_NAMES = {code: name for name, code in EXCHANGE_TYPES.items()}


@dataclass(frozen=True)
class SmartApiConfig:
    root: str  # REST root, scheme://host:port with no path
    stream_url: str  # ws(s)://…/smart-stream
    order_update_url: str  # ws(s)://…/smart-order-update
    clientcode: str
    pin: str
    api_key: str
    totp_secret: str
    timeout_s: float = 7.0  # the SDK's own request timeout
    stream_stall_s: float = 5.0  # no frame for this long while subscribed = a stalled stream
    stream_sockets: int = 3  # smart-stream connections the login's tick stream may open (SmartAPI allows 3)
    entry_ttl_s: float = 5.0  # an entry queued longer than this expires instead of trading late
    orders_per_second_per_segment: int = 10  # exchanges' threshold for unregistered algos
    master_url: str = ""  # instrument master; empty = {root}/OpenAPI_File/files/OpenAPIScripMaster.json
    # The static-IP rule: the address of this host the login's REST client and sockets bind, so its
    # orders leave from the IP registered for its client code. Empty: the default route.
    source_address: str = ""
    # A login for market data only (MARKET_DATA=live): its REST client sends login and market-data routes
    # (`rest.MARKET_DATA_ROUTES`) and refuses every other before sending; it opens no order-update socket.
    market_data_only: bool = False

    def __repr__(self) -> str:
        only = ", market_data_only=True" if self.market_data_only else ""
        return (f"SmartApiConfig(root={self.root!r}, clientcode={self.clientcode!r}, "
                f"source_address={self.source_address!r}{only})")


@dataclass(frozen=True)
class StreamCredentials:
    """What both sockets authenticate with, taken from the REST session."""

    clientcode: str
    api_key: str
    jwt_token: str
    feed_token: str

    def __repr__(self) -> str:
        return f"StreamCredentials(clientcode={self.clientcode!r})"

