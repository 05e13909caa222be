"""Who may call the webhooks: a plain ASGI middleware refusing addresses outside WEBHOOK_ALLOWLIST.

Only HTTP requests to `/opentrade` and `/chartink` are checked; everything else passes (the read API
and the dashboard are behind the webhook secret). The client is the connection's peer, unless that
peer is one of TRUSTED_PROXIES: then it is the right-most address of `X-Forwarded-For` that is not a
trusted proxy itself (the left-most entries are whatever the client chose to send). A forwarded
address that cannot be read is refused, never guessed.
"""
from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any

from service.errors import SettingsError
from service.settings import Settings

__all__ = ["PRESETS", "WEBHOOK_PATHS", "AllowList", "allowlist_from_settings", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# TradingView's published webhook source addresses
# (https://www.tradingview.com/support/solutions/43000529348-about-webhooks/).
PRESETS: dict[str, tuple[str, ...]] = {
    "tradingview": ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7"),
}
WEBHOOK_PATHS = frozenset({"/opentrade", "/chartink"})
_REFUSAL = json.dumps({"errors": [{"field": "client", "reason": "address not allowed"}]}).encode()


def parse_networks(text: str, setting: str = "WEBHOOK_ALLOWLIST") -> tuple[Network, ...]:
    """Comma-separated networks or bare addresses (and preset words); `SettingsError` naming bad entries."""
    networks: list[Network] = []
    problems = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        for item in PRESETS.get(entry.lower(), (entry,)):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                problems.append((setting, f"{entry!r} is not an address, a network or one of {', '.join(PRESETS)}"))
    if problems:
        raise SettingsError(problems)
    return tuple(networks)


def _address(text: str) -> Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # 203.0.113.9:51234
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:203.0.113.9 from a dual-stack socket is that IPv4 client
    return address


def _within(address: Address, networks: Iterable[Network]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


class AllowList:
    """`AllowList(app, networks, trusted_proxies)`; no networks → every address is allowed."""

    def __init__(self, app: Any, networks: Iterable[Network], trusted_proxies: Iterable[Network] = (),
                 paths: Iterable[str] = WEBHOOK_PATHS) -> None:
        self.app = app
        self.networks = tuple(networks)
        self.trusted_proxies = tuple(trusted_proxies)
        self.paths = frozenset(paths)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.networks or self._path(scope) not in self.paths:
            await self.app(scope, receive, send)
            return
        client = self.client_address(scope)
        if client is not None and _within(client, self.networks):
            await self.app(scope, receive, send)
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_REFUSAL)).encode())]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": _REFUSAL})

    @staticmethod
    def _path(scope: dict[str, Any]) -> str:
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        return path.rstrip("/") or "/"

    def client_address(self, scope: dict[str, Any]) -> Address | None:
        """The address the request is judged by, or None when it cannot be known."""
        peer = scope.get("client")
        address = _address(peer[0]) if peer else None
        if address is None or not _within(address, self.trusted_proxies):
            return address
        forwarded = [value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"x-forwarded-for"]
        hops = [hop for value in forwarded for hop in value.split(",")]
        for hop in reversed(hops):
            hop_address = _address(hop)
            if hop_address is None:
                return None
            if not _within(hop_address, self.trusted_proxies):
                return hop_address
            address = hop_address
        return address  # every hop a trusted proxy: the left-most of them


def allowlist_from_settings(app: Any, settings: Settings) -> Any:
    """The app behind WEBHOOK_ALLOWLIST, or the app itself when the list is empty."""
    networks = parse_networks(settings.webhook_allowlist)
    proxies = parse_networks(settings.trusted_proxies, "TRUSTED_PROXIES")
    return AllowList(app, networks, proxies) if networks else app
