"""Broker logins: the default one from settings, more from CREDENTIALS_FILE.

The file is JSON, a list of `{"clientcode", "password", "api_key", "totp_secret"}` objects (one per
client code), and is refused unless only its owner can read it (mode 0600 or stricter). An entry may
name its `source_address`: the address of this host its orders and sockets leave from (the static-IP
rule, service/addresses.py). Live, tickguard refuses to start when two logins would place orders from
one address (`check_static_ips`), unless STATIC_IP_CHECK=off: the broker would refuse all but one.
"""
from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from service.addresses import check_source_address
from service.errors import CredentialsError, SettingsError
from service.settings import Settings

__all__ = ["check_static_ips", "default_login", "Login", "load_logins", "shared_addresses"]


@dataclass(frozen=True, slots=True)
class Login:
    clientcode: str
    password: str
    api_key: str
    totp_secret: str
    source_address: str = ""  # empty: the default route

    def __repr__(self) -> str:
        return f"Login(clientcode={self.clientcode!r}, source_address={self.source_address!r})"


_FIELDS = ("clientcode", "password", "api_key", "totp_secret")
_OPTIONAL = ("source_address",)


def default_login(settings: Settings) -> Login:
    """The settings' own login: SMARTAPI_USER, SMARTAPI_PASS, SMARTAPI_KEY, TOTP_SECRET."""
    return Login(settings.smartapi_user, settings.smartapi_pass, settings.smartapi_key, settings.totp_secret,
                 settings.smartapi_source_address)


def load_logins(settings: Settings) -> list[Login]:
    """The default login first, then the credentials file's, one per client code."""
    default = default_login(settings)
    logins = {default.clientcode: default}
    if settings.credentials_file:
        for login in _read_file(Path(settings.credentials_file)):
            if login.clientcode in logins:
                raise CredentialsError(settings.credentials_file, f"client code {login.clientcode} appears twice")
            logins[login.clientcode] = login
    return list(logins.values())


def _read_file(path: Path) -> list[Login]:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise CredentialsError(str(path), "not found") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(str(path), f"mode {stat.S_IMODE(mode):04o} is too open; run chmod 600 {path}")
    if os.name == "posix" and path.stat().st_uid != os.getuid():
        raise CredentialsError(str(path), "not owned by the user running tickguard")
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CredentialsError(str(path), f"not readable JSON ({exc.__class__.__name__})") from None
    if not isinstance(entries, list):
        raise CredentialsError(str(path), "expected a JSON list of logins")
    logins = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise CredentialsError(str(path), f"entry {index} is not an object")
        missing = [f for f in _FIELDS if not isinstance(entry.get(f), str) or not entry.get(f)]
        if missing:
            raise CredentialsError(str(path), f"entry {index} lacks {', '.join(missing)}")
        extra = sorted(set(entry) - set(_FIELDS) - set(_OPTIONAL))
        if extra:
            raise CredentialsError(str(path), f"entry {index} has unknown fields {', '.join(extra)}")
        address = entry.get("source_address", "")
        if not isinstance(address, str):
            raise CredentialsError(str(path), f"entry {index} source_address: expected a string, e.g. \"127.0.0.2\"")
        if address:
            try:
                address = check_source_address(address)
            except ValueError as exc:
                raise CredentialsError(str(path), f"entry {index} ({entry['clientcode']}) source_address: {exc}") from None
        logins.append(Login(*(entry[f] for f in _FIELDS), source_address=address))
    return logins


def shared_addresses(logins: list[Login]) -> dict[str, list[str]]:
    """Addresses two or more logins would place orders from ("" = the default route) -> their client codes."""
    by_address: dict[str, list[str]] = {}
    for login in logins:
        by_address.setdefault(login.source_address, []).append(login.clientcode)
    return {address: codes for address, codes in by_address.items() if len(codes) > 1}


def check_static_ips(settings: Settings, logins: list[Login]) -> None:
    """Live, refuse logins that share an address: the static-IP rule lets one IP serve one client.

    A SettingsError naming each shared address and its logins; nothing in paper mode or with
    STATIC_IP_CHECK=off."""
    if not settings.live or settings.static_ip_check == "off":
        return
    problems = [("STATIC_IP_CHECK",
                 f"logins {', '.join(codes)} would all place orders from {address or 'the default route'}, and "
                 "the broker accepts a client's orders only from the static IP registered for it (one IP per "
                 "client): give each its own source_address in CREDENTIALS_FILE (SMARTAPI_SOURCE_ADDRESS for "
                 "the default login), or set STATIC_IP_CHECK=off")
                for address, codes in shared_addresses(logins).items()]
    if problems:
        raise SettingsError(problems)
