"""tickguard's errors.

    TickguardError
    ├── SettingsError      (problems: list of (setting, reason))
    └── CredentialsError   (path, reason)
"""
from __future__ import annotations

__all__ = ["TickguardError", "SettingsError", "CredentialsError"]


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
