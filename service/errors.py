"""tickguard's errors.

    TickguardError
    ├── SettingsError      (problems: list of (setting, reason))
    ├── CredentialsError   (path, reason)
    ├── LoginRefused       (login, reason): the broker refused the login (PIN, TOTP, API key)
    └── AddressInUse       (what, host, port, reason): a port tickguard must listen on cannot be had
"""
from __future__ import annotations

__all__ = ["TickguardError", "SettingsError", "CredentialsError", "LoginRefused", "AddressInUse"]


class TickguardError(Exception):
    """Base of every error tickguard raises on purpose."""


class SettingsError(TickguardError):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {name}: {reason}" for name, reason in problems)
        super().__init__(f"invalid settings:\n{lines}")


class CredentialsError(TickguardError):
    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"credentials file {path}: {reason}")


class LoginRefused(TickguardError):
    def __init__(self, login: str, reason: str) -> None:
        self.login = login
        self.reason = reason
        super().__init__(f"the broker refused the login of {login}: {reason}")


class AddressInUse(TickguardError):
    def __init__(self, what: str, host: str, port: int, reason: str = "address already in use") -> None:
        self.what = what
        self.host = host
        self.port = port
        self.reason = reason
        super().__init__(f"{what} cannot listen on {host}:{port}: {reason}")
