"""The SmartAPI brokers tickguard trades on, built from its settings: one per login, and the market data.

The default login's broker (SMARTAPI_USER) serves every account without a login of its own; each
other login in CREDENTIALS_FILE gets a broker of its own, keyed by its client code in upper case.
Market data comes from the default login's broker too, unless MARKET_DATA=live: then from a login of
its own, built from the MARKET_DATA_* settings alone and for market data only (its REST client refuses
every other route; it is wrapped in `MarketData`, which has no order method). The adapter knows
nothing of the settings: it is handed a `SmartApiConfig`.
"""
from __future__ import annotations

from service.broker.market_data import MarketData
from service.broker.smartapi.adapter import SmartApiBroker
from service.broker.smartapi.config import SmartApiConfig
from service.accounts.credentials import Login, check_static_ips, default_login, load_logins
from service.settings import Settings

__all__ = ["brokers_from_settings", "config_from_settings", "market_data_config", "market_data_from_settings"]


def config_from_settings(settings: Settings, login: Login | None = None) -> SmartApiConfig:
    """The adapter's configuration for a login (default: the settings' own) and the settings' URLs."""
    login = login or default_login(settings)
    return SmartApiConfig(
        root=settings.rest_root,
        stream_url=settings.stream_url,
        order_update_url=settings.order_update_url,
        clientcode=login.clientcode,
        pin=login.password,
        api_key=login.api_key,
        totp_secret=login.totp_secret,
        stream_stall_s=settings.stream_stall_s,
        stream_sockets=settings.stream_sockets,
        entry_ttl_s=settings.entry_ttl_s,
        orders_per_second_per_segment=settings.orders_per_second,
        master_url=settings.instrument_master_url,
        source_address=login.source_address,
    )


def brokers_from_settings(settings: Settings) -> tuple[SmartApiBroker, dict[str, SmartApiBroker]]:
    """The default login's broker, and the other logins' brokers by client code (upper case).

    Built on the wall clock, whatever clock the caller runs on: the login's TOTP must be the
    current one. Live, logins that would place orders from one address are refused first (the
    static-IP rule; `check_static_ips`)."""
    logins = load_logins(settings)
    check_static_ips(settings, logins)
    default = SmartApiBroker(config_from_settings(settings))
    own = settings.smartapi_user.upper()
    others = {login.clientcode.upper(): SmartApiBroker(config_from_settings(settings, login))
              for login in logins if login.clientcode.upper() != own}
    return default, others


def market_data_config(settings: Settings) -> SmartApiConfig:
    """The market-data login's configuration (MARKET_DATA=live): the MARKET_DATA_* settings and nothing of
    the order login's — not its credentials, not its endpoints, not its source address."""
    return SmartApiConfig(
        root=settings.market_data_rest_root,
        stream_url=settings.market_data_stream,
        order_update_url="",  # it has no orders to hear of
        clientcode=settings.market_data_user,
        pin=settings.market_data_pass,
        api_key=settings.market_data_key,
        totp_secret=settings.market_data_totp_secret,
        stream_stall_s=settings.stream_stall_s,
        stream_sockets=settings.stream_sockets,
        market_data_only=True,
    )


def market_data_from_settings(settings: Settings, default: SmartApiBroker) -> MarketData:
    """Where market data is read: a login of its own with MARKET_DATA=live, else the default broker."""
    if settings.market_data == "live":
        return MarketData(SmartApiBroker(market_data_config(settings)))
    return MarketData(default, owned=False)
