"""Source addresses for the static-IP rule: checking a login's address, reading PAPER_STATIC_IPS.

Since 2026-04-01 every API order of a client must come from a static IP registered for that client,
and one IP serves one client. A login names the address of this host its orders leave from
(`source_address` in CREDENTIALS_FILE, SMARTAPI_SOURCE_ADDRESS for the default login); it is checked
here at start, by binding it once, so a mistyped or foreign address is refused with its name rather
than surfacing later as a broker that cannot be reached.
"""
from __future__ import annotations

import ipaddress
import json
import socket

__all__ = ["check_source_address", "parse_static_ips"]


def check_source_address(text: str) -> str:
    """The address in its canonical form; ValueError saying why it cannot be a source address here."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise ValueError(f"expected an IP address of this host, got {text!r}") from None
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(address), 0))
    except OSError as exc:
        raise ValueError(f"{address} is not an address of this host (binding it failed: {exc.strerror})") from None
    return str(address)


def parse_static_ips(text: str) -> dict[str, str]:
    """PAPER_STATIC_IPS: a JSON object, client code -> IP address, one address per client.

    The addresses are the paper exchange's registrations, not addresses of this host: not bound here."""
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        raise ValueError('expected a JSON object of client code -> IP address, e.g. {"P0001": "127.0.0.2"}') from None
    if not isinstance(raw, dict):
        raise ValueError('expected a JSON object of client code -> IP address, e.g. {"P0001": "127.0.0.2"}')
    registered: dict[str, str] = {}
    owners: dict[str, str] = {}
    for code, value in raw.items():
        try:
            address = str(ipaddress.ip_address(str(value).strip()))
        except ValueError:
            raise ValueError(f"client {code}: expected an IP address, got {value!r}") from None
        if code.upper() in registered:
            raise ValueError(f"client {code} appears twice")
        if address in owners:
            raise ValueError(f"{address} is registered for both {owners[address]} and {code}: one IP serves one client")
        owners[address] = code
        registered[code.upper()] = address
    return registered
