"""Settings from the environment and `.env`, typed and validated at start.

Every setting is an upper-case environment variable named like the field. `.env` (or the file named
by `TICKGUARD_ENV_FILE`) is read first; the real environment wins. Problems are collected and
reported together; secret values are never part of a message or a repr.
"""
from __future__ import annotations

import os
from typing import Annotated, Any, Literal

import msgspec
import pyotp

from service.addresses import check_source_address, parse_static_ips
from service.env_file import read_env_file
from service.errors import SettingsError
from service.charges.setting import charges_problems
from service.live_data.settings import market_data_problems, stream_url_for
from service.market_calendar import holidays_problems
from service.settings_checks import notify_problems, recording_problems
from service.plugins import plugin_problems

__all__ = ["Settings", "load_settings", "SECRET_FIELDS", "DEMO_CREDENTIALS", "PAPER_OPERATOR", "PAPER_OPERATOR_PASSWORD",
           "PAPER_OPERATOR_TOKEN", "PAPER_WEBHOOK_SECRET"]

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[int, msgspec.Meta(gt=0)]

SECRET_FIELDS = frozenset({"smartapi_pass", "smartapi_key", "totp_secret", "webhook_secret", "metrics_token",
                           "telegram_bot_token", "notify_webhook_urls", "database_url", "market_data_pass",
                           "market_data_key", "market_data_totp_secret"})
PAPER_WEBHOOK_SECRET = "paper-webhook-secret"
# The demo operator of paper mode without OPERATORS_FILE: public values, printed by `make run`.
PAPER_OPERATOR = "demo"
PAPER_OPERATOR_PASSWORD = "paper-demo"
PAPER_OPERATOR_TOKEN = "tgo_demo.paper-demo-token"

# Public demo login of the paper exchange, used in paper mode when no broker settings are given.
DEMO_CREDENTIALS = {
    "smartapi_user": "P0001",
    "smartapi_pass": "1234",
    "smartapi_key": "paper-demo-key",
    "totp_secret": "TICKGUARDPAPERDEMOTOTPSECRET2345",
}

DEFAULT_DB = ".tickguard/tickguard.db"
LIVE_ROOT = "https://apiconnect.angelone.in"
LIVE_STREAM_URL = "wss://smartapisocket.angelone.in/smart-stream"
LIVE_ORDER_UPDATE_URL = "wss://tns.angelone.in/smart-order-update"


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tickguard_mode: Literal["paper", "live"] = "paper"
    # The default broker login. In paper mode the paper exchange accepts exactly these (plus the
    # entries of CREDENTIALS_FILE); unset, they default to the public demo login.
    smartapi_user: str = ""
    smartapi_pass: str = ""
    smartapi_key: str = ""
    totp_secret: str = ""
    credentials_file: str = ""
    # The static-IP rule (service/addresses.py): the address of this host the default login's orders
    # and sockets leave from (empty: the default route). Live start refuses two logins on one address
    # unless STATIC_IP_CHECK=off.
    smartapi_source_address: str = ""
    static_ip_check: Literal["on", "off"] = "on"
    # Where the adapter talks to; empty means the live endpoints (live) or the paper exchange (paper).
    smartapi_root: str = ""
    smartapi_stream_url: str = ""
    smartapi_order_update_url: str = ""
    # Paper trading on live market data (service/live_data; README "Paper trading on live market data").
    # MARKET_DATA=live, paper mode only: ticks, prices and candles from a real login of its own (never the
    # order login's credentials), orders to the paper exchange, filled at those prices. MARKET_DATA_ROOT
    # empty: Angel One's REST root; the stream URL derives from the root unless MARKET_DATA_STREAM_URL.
    market_data: Literal["paper", "live"] = "paper"
    market_data_user: str = ""
    market_data_pass: str = ""
    market_data_key: str = ""
    market_data_totp_secret: str = ""
    market_data_root: str = ""
    market_data_stream_url: str = ""
    # The service.
    tickguard_db: str = DEFAULT_DB
    # PostgreSQL instead of the SQLite file (service/pg.py): postgresql://user@host:port/database. Empty: SQLite.
    database_url: Annotated[str, msgspec.Meta(pattern=r"^((postgresql|postgres)://\S+)?$")] = ""
    # Opens /opentrade and /chartink only. People log in as operators (OPERATORS_FILE, `tickguard operator`);
    # scripts use an operator's API token; /metrics also takes METRICS_TOKEN. Paper mode without
    # OPERATORS_FILE has the demo operator (PAPER_OPERATOR); live mode requires the file.
    webhook_secret: str = ""
    operators_file: str = ""
    metrics_token: str = ""
    dedup_window_s: Annotated[int, msgspec.Meta(ge=0, le=86_400)] = 60
    strategies_file: str = ""
    market_hours: Literal["exchange", "always"] = "exchange"
    # Holidays and special sessions per exchange, JSON (service/market_calendar.py), added to the lists
    # shipped with tickguard (NSE's 2026 list for NSE, NFO, BSE, BFO). Used when MARKET_HOURS=exchange.
    holidays_file: str = ""
    stale_tick_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 5.0
    # The alert price check (service/alerts/prices.py): an alert priced more than this percent away from
    # the live price is refused (0: never); PRICE_SOURCE=live plans the trade at the live price instead.
    price_sanity_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] = 5.0
    price_source: Literal["alert", "live"] = "alert"
    exit_order_type: Literal["LIMIT", "MARKET"] = "LIMIT"
    exit_protection_pct: Annotated[float, msgspec.Meta(gt=0, le=20)] = 0.5
    exit_chase_ms: Annotated[int, msgspec.Meta(ge=50, le=60_000)] = 500
    exit_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] = 3
    # An order whose placement is in doubt counts as never placed once two order-book reads this far apart lack it.
    doubt_settle_s: Annotated[float, msgspec.Meta(gt=0, le=300)] = 5.0
    # The demo account (until the account service is configured).
    demo_account: str = "DEMO"
    demo_fund: Annotated[float, msgspec.Meta(gt=0)] = 100_000.0
    demo_stoploss_type: Literal["number", "percentage"] = "percentage"
    demo_stoploss: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    # The broker-side backup stop (service/execution/backstop.py; README "Broker-side backup stop"): off |
    # backup. Unset: backup in live mode, off in paper mode. Its trigger sits BROKER_STOP_BUFFER behind
    # tickguard's stop ("0.2%" of the stop price, or rupees "1.50"; at least two ticks); a trailed stop
    # moves it when it moved BROKER_STOP_STEP percent, at most once per BROKER_STOP_MIN_S per trade.
    broker_stop: Literal["off", "backup"] = "off"
    broker_stop_buffer: Annotated[str, msgspec.Meta(pattern=r"^\s*\d{1,6}(\.\d{1,4})?\s*%?\s*$")] = "0.2%"
    broker_stop_step: Annotated[float, msgspec.Meta(gt=0, le=20)] = 0.25
    broker_stop_min_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 5.0
    # The cluster (README "Running as a cluster"; service/cluster): the NATS server with JetStream, the
    # name that prefixes every subject, stream and bucket of this cluster, how many guard shards there
    # are (every role must agree), and the failover budget: a guard leader's lease lapses after
    # FAILOVER_S / 2 without renewal, leaving the standby the other half to take over and subscribe.
    nats_url: Annotated[str, msgspec.Meta(pattern=r"^(nats|tls)://\S+$")] = "nats://127.0.0.1:4222"
    cluster_name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,40}$")] = "tickguard"
    guard_shards: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    failover_s: Annotated[float, msgspec.Meta(ge=0.5, le=60)] = 3.0
    # Adapter behaviour (service/broker/smartapi).
    stream_stall_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 5.0
    # Smart-stream sockets a login's tick stream may open, 1000 instruments each (SmartAPI allows 3 per
    # client code); a socket opens only when the instruments need it.
    stream_sockets: Annotated[int, msgspec.Meta(ge=1, le=3)] = 3
    entry_ttl_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 5.0
    orders_per_second: Annotated[int, msgspec.Meta(ge=1, le=20)] = 10
    # The paper exchange.
    paper_host: str = "127.0.0.1"
    paper_port: Port = 8700
    paper_url: str = ""
    paper_db: str = ".tickguard/paper.db"
    paper_seed: int = 7
    paper_funds: Annotated[float, msgspec.Meta(ge=0)] = 1_000_000.0
    paper_tick_ms: NonNegative = 250
    paper_fill_latency_ms: NonNegative = 0
    paper_session_ttl_s: Positive = 28 * 3600
    paper_rate_limits: bool = False
    # The paper exchange enforces the static-IP rule when set: JSON, client code -> the only address
    # its orders may come from (paper/static_ips.py). Empty: not enforced.
    paper_static_ips: str = ""
    # Charges (service/charges/): the brokerage plan — `angel-one`, a flat fee in rupees per executed
    # order (`20`, `0`), or a percentage of the order's value with an optional cap in rupees (`0.03%`,
    # `0.03%<=20`) — and a rate schedule file in place of the shipped one (empty: the shipped one).
    brokerage: str = "angel-one"
    charges_schedule: str = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Log lines as JSON or as readable text; auto: text when stderr is a terminal, JSON otherwise.
    log_format: Literal["auto", "json", "text"] = "auto"
    # The event loop of `tickguard serve` and `tickguard paper`: uvloop (libuv; faster sockets, so less
    # of the tick→order path) or the standard library's asyncio.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # Symbols (service/symbols, docs/symbols.md). The instrument master's URL; empty means Angel One's
    # file in live mode and the paper exchange's copy in paper mode.
    instrument_master_url: Annotated[str, msgspec.Meta(pattern=r"^(https?://\S+)?$")] = ""
    # The compact daily index of the master.
    symbols_dir: Annotated[str, msgspec.Meta(min_length=1)] = ".tickguard/symbols"
    # Resolved tickers -> tokens, rewritten atomically; a corrupt or stale file is rebuilt.
    symbol_tokens_file: Annotated[str, msgspec.Meta(min_length=1)] = "symbol_tokens.json"
    # Per-order freeze quantities by underlying (JSON: name -> units); empty = the table shipped with
    # tickguard (service/symbols/freeze_qty.json). The exchanges revise them.
    freeze_qty_file: str = ""
    # The master is downloaded again once a day, after this IST hour (0-23).
    symbols_refresh_hour: Annotated[int, msgspec.Meta(ge=0, le=23)] = 8
    # Notifications (service/notify.py, docs/notifications.md). A Telegram bot's token (from @BotFather)
    # and the chat it posts to: both or neither.
    telegram_bot_token: str = ""
    telegram_chat_id: str = ""
    # The Bot API's root; tests point it at a local fake.
    telegram_api_url: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/]+\S*$")] = "https://api.telegram.org"
    # Outgoing webhooks, comma-separated http(s) URLs, each sent every notification as JSON. A secret:
    # such URLs usually carry their own credentials (Slack, Discord).
    notify_webhook_urls: str = ""
    # Tries per message and destination (timeouts, 5xx, 429) before it is given up.
    notify_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] = 5

    # Accounts (service/accounts/directory.py, docs/accounts.md). The account service's list URL; empty:
    # paper mode serves the demo accounts itself, live mode takes its accounts from DEMO_ACCOUNTS_FILE.
    users_url: Annotated[str, msgspec.Meta(pattern=r"^(https?://\S+)?$")] = ""
    # A fetched account list is used this many seconds before the service is asked again.
    accounts_ttl_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    # Accounts defined locally, JSON in the account service's contract ({"accountslist": [...]}).
    demo_accounts_file: str = ""
    # Alert sources (docs/alert-sources.md). Chartink scans, JSON: {"scan name": {"strategy", "signal"}}.
    chartink_scans: str = ""
    # Who may call /opentrade and /chartink: comma-separated networks, or `tradingview`; empty = anyone.
    webhook_allowlist: str = ""
    # Reverse proxies whose X-Forwarded-For is believed (comma-separated networks).
    trusted_proxies: str = ""
    # Operator plug-ins of the stop engine (service/plugins.py, docs/plugins.md), JSON: a list of
    # {"stage": "tick"|"signal"|"observer", "factory": "package.module:factory", "kwargs": {...}, "name"?}.
    plugins: str = ""
    # A directory of your own plug-in modules, searched after the installed packages.
    plugins_path: str = ""
    # Recording (service/recording, README "Recording ticks"): every tick the guard receives, in the order
    # the engine sees it, to RECORD_DIR (unset: `recordings` beside TICKGUARD_DB, or in the working
    # directory with DATABASE_URL) as IST hour files and Parquet days. At most RECORD_QUEUE ticks wait
    # for the writer; beyond that a tick is dropped and counted, never waited for.
    record_ticks: bool = False
    record_dir: str = "recordings"
    record_queue: Annotated[int, msgspec.Meta(ge=1_000, le=10_000_000)] = 100_000

    def __repr__(self) -> str:
        shown = []
        for name in self.__struct_fields__:
            value = getattr(self, name)
            shown.append(f"{name}={'***' if name in SECRET_FIELDS and value else value!r}")
        return f"Settings({', '.join(shown)})"

    __str__ = __repr__

    @property
    def live(self) -> bool:
        return self.tickguard_mode == "live"

    @property
    def paper_base_url(self) -> str:
        """The paper exchange's REST root: PAPER_URL when set, else the embedded one."""
        if self.paper_url:
            return self.paper_url.rstrip("/")
        return f"http://{self.paper_host}:{self.paper_port}"

    @property
    def rest_root(self) -> str:
        return self.smartapi_root or (LIVE_ROOT if self.live else self.paper_base_url)

    @property
    def stream_url(self) -> str:
        if self.smartapi_stream_url:
            return self.smartapi_stream_url
        if self.live:
            return LIVE_STREAM_URL
        return self.paper_base_url.replace("http", "ws", 1) + "/smart-stream"

    @property
    def market_data_rest_root(self) -> str:
        return self.market_data_root or LIVE_ROOT

    @property
    def market_data_stream(self) -> str:
        return self.market_data_stream_url or stream_url_for(self.market_data_rest_root, LIVE_ROOT, LIVE_STREAM_URL)

    @property
    def order_update_url(self) -> str:
        if self.smartapi_order_update_url:
            return self.smartapi_order_update_url
        if self.live:
            return LIVE_ORDER_UPDATE_URL
        return self.paper_base_url.replace("http", "ws", 1) + "/smart-order-update"


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _read_raw(environ: dict[str, str] | None, env_file: str | None) -> dict[str, str]:
    environ = dict(os.environ if environ is None else environ)
    named = None if env_file else environ.get("TICKGUARD_ENV_FILE")
    path = env_file or named or ".env"
    from_file = read_env_file(path, setting="TICKGUARD_ENV_FILE" if named else path)
    return {**from_file, **environ}


def _convert(name: str, raw: str, annotation: Any) -> Any:
    if annotation is bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"expected one of {sorted(_TRUE | _FALSE - {''})}, got {raw!r}")
    try:
        return msgspec.convert(raw.strip(), annotation, strict=False)
    except msgspec.ValidationError as exc:
        reason = str(exc).split(" - at ")[0]
        shown = "***" if name in SECRET_FIELDS else repr(raw)
        raise ValueError(f"{reason[0].lower()}{reason[1:]} (got {shown})") from None


def load_settings(environ: dict[str, str] | None = None, env_file: str | None = None) -> Settings:
    """Build settings from `environ` (default: the process environment) over the `.env` file."""
    raw = _read_raw(environ, env_file)
    hints = {f.name: f.type for f in msgspec.structs.fields(Settings)}
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for name, annotation in hints.items():
        env_name = name.upper()
        if env_name not in raw:
            continue
        try:
            values[name] = _convert(name, raw[env_name], annotation)
        except ValueError as exc:
            problems.append((env_name, str(exc)))
    mode = values.get("tickguard_mode", "paper")
    credentials = ("smartapi_user", "smartapi_pass", "smartapi_key", "totp_secret")
    if mode == "live":
        for name in credentials:
            if not values.get(name):
                problems.append((name.upper(), "required when TICKGUARD_MODE=live"))
    elif not any(values.get(name) for name in credentials):
        values.update(DEMO_CREDENTIALS)
    else:
        for name in credentials:
            if not values.get(name):
                problems.append((name.upper(), "set all four broker settings, or none for the demo login"))
    if mode == "live" and len(values.get("webhook_secret", "")) < 16:
        problems.append(("WEBHOOK_SECRET", "required in live mode, at least 16 characters"))
    elif mode != "live" and not values.get("webhook_secret"):
        values["webhook_secret"] = PAPER_WEBHOOK_SECRET
    if mode == "live" and not values.get("operators_file"):
        problems.append(("OPERATORS_FILE", "required in live mode: add an operator with `tickguard operator add NAME`"))
    token = values.get("metrics_token", "")
    if token and len(token) < 16:
        problems.append(("METRICS_TOKEN", "at least 16 characters"))
    if "market_hours" not in values and mode != "live":
        values["market_hours"] = "always"
    if "broker_stop" not in values:
        values["broker_stop"] = "backup" if mode == "live" else "off"
    buffer = values.get("broker_stop_buffer", "").strip()
    if buffer.endswith("%") and float(buffer[:-1]) >= 20:
        problems.append(("BROKER_STOP_BUFFER", f"a buffer of {buffer} is not a backup stop: keep it under 20%"))
    secret = values.get("totp_secret")
    if secret and not _valid_totp_secret(secret):
        problems.append(("TOTP_SECRET", "not a usable TOTP secret: base32 (A-Z, 2-7), at least 23 characters"))
    for name in ("smartapi_root", "paper_url"):
        url = values.get(name)
        if url and not url.startswith(("http://", "https://")):
            problems.append((name.upper(), f"expected an http(s) URL, got {url!r}"))
    for name in ("smartapi_stream_url", "smartapi_order_update_url"):
        url = values.get(name)
        if url and not url.startswith(("ws://", "wss://")):
            problems.append((name.upper(), f"expected a ws(s) URL, got {url!r}"))
    for name, check in (("smartapi_source_address", check_source_address), ("paper_static_ips", parse_static_ips)):
        if values.get(name):
            try:
                checked = check(values[name])
                if name == "smartapi_source_address":
                    values[name] = checked
            except ValueError as exc:
                problems.append((name.upper(), str(exc)))
    problems.extend(market_data_problems(values, mode, LIVE_ROOT, _valid_totp_secret))
    problems.extend(notify_problems(values))
    problems.extend(recording_problems(values, DEFAULT_DB))
    problems.extend(plugin_problems(values))
    problems.extend(charges_problems(values))
    problems.extend(holidays_problems(values))
    if problems:
        raise SettingsError(problems)
    return Settings(**values)


def _valid_totp_secret(secret: str) -> bool:
    try:
        pyotp.TOTP(secret).now()
    except Exception:  # pyotp raises binascii.Error or ValueError on bad base32
        return False
    return True
