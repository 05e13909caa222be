"""tickguard's exit statuses, in one place (README "Exit codes"), and the one line a failure prints.

A start-up that cannot go on says why in one line on stderr — no traceback — and exits with a status a
supervisor can act on: a settings mistake or a refused login will fail again the same way (do not
restart in a loop), an address in use may free up, a guard that lost its lease is restarted at once.
"""
from __future__ import annotations

import enum

from service.errors import AddressInUse, LoginRefused, SettingsError, TickguardError

__all__ = ["ExitCode", "failure"]


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1  # anything unforeseen: its traceback is in the log
    SETTINGS = 2  # settings invalid, or a settings or credentials file that cannot be read
    LEASE_LOST = 3  # `tickguard guard`: the shard's lease was lost (its supervisor restarts it)
    LOGIN_REFUSED = 4  # the broker refused the login: wrong PIN, TOTP secret or API key
    ADDRESS_IN_USE = 5  # the service's or the paper exchange's port is taken (or the address is not this host's)
    DIFFERENCES = 6  # `tickguard charges check`: tickguard's charges and the broker's differ
    INTERRUPTED = 130  # Ctrl-C before the service had started


def failure(exc: TickguardError) -> tuple[ExitCode, str]:
    """The exit status for `exc` and the one line that says what went wrong."""
    if isinstance(exc, LoginRefused):
        return ExitCode.LOGIN_REFUSED, f"tickguard: {exc}"
    if isinstance(exc, AddressInUse):
        return ExitCode.ADDRESS_IN_USE, f"tickguard: {exc}"
    if isinstance(exc, SettingsError):
        problems = "; ".join(f"{name}: {reason}" for name, reason in exc.problems)
        return ExitCode.SETTINGS, f"tickguard: invalid settings: {problems}"
    return ExitCode.SETTINGS, "tickguard: " + " ".join(str(exc).split())
