"""Broker logins: the default one from settings, more from CREDENTIALS_FILE.

The file is JSON, a list of `{"clientcode", "password", "api_key", "totp_secret"}` objects (one per
client code), and is refused unless only its owner can read it (mode 0600 or stricter).
"""
from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from service.errors import CredentialsError
from service.settings import Settings

__all__ = ["default_login", "Login", "load_logins"]


@dataclass(frozen=True, slots=True)
class Login:
    clientcode: str
    password: str
    api_key: str
    totp_secret: str

    def __repr__(self) -> str:
        return f"Login(clientcode={self.clientcode!r})"


_FIELDS = ("clientcode", "password", "api_key", "totp_secret")


def default_login(settings: Settings) -> Login:
    """The settings' own login: SMARTAPI_USER, SMARTAPI_PASS, SMARTAPI_KEY, TOTP_SECRET."""
    return Login(settings.smartapi_user, settings.smartapi_pass, settings.smartapi_key, settings.totp_secret)


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
        extra = sorted(set(entry) - set(_FIELDS))
        if extra:
            raise CredentialsError(str(path), f"entry {index} has unknown fields {', '.join(extra)}")
        logins.append(Login(*(entry[f] for f in _FIELDS)))
    return logins
