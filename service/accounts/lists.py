"""The account list: the account service's contract parsed row by row, and the local lists (the
demo account of the `DEMO_*` settings, `DEMO_ACCOUNTS_FILE`) — trading-semantics §6.

`{"accountslist": [{"accountId", "pseudoAccountName", "fund", "stoplosstype", "stoploss",
"clientcode"?, ...}]}`: `fund` in rupees, a number or a numeric string; extra fields ignored. A bad
row is skipped and reported; a body that is not that contract at all is a `ValueError`.

    TickguardError
    └── AccountsError
        ├── AccountsUnavailable   (reason)              no fresh list to enter on
        ├── UnknownAccounts       (ids)                 an alert names accounts not listed
        └── AccountUnusable       (account_id, reason)  e.g. its client code has no login
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from service.accounts.model import Account
from service.errors import SettingsError, TickguardError
from service.settings import Settings

__all__ = ["ID_LIMIT", "AccountList", "AccountUnusable", "AccountsError", "AccountsUnavailable", "UnknownAccounts",
           "demo_accounts", "local_accounts", "parse_accountslist"]

ID_LIMIT = 64


class AccountsError(TickguardError):
    """Base of the account directory's errors."""


class AccountsUnavailable(AccountsError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnknownAccounts(AccountsError):
    def __init__(self, ids: tuple[str, ...]) -> None:
        self.ids = ids
        super().__init__(f"unknown accounts: {', '.join(ids)}")


class AccountUnusable(AccountsError):
    def __init__(self, account_id: str, reason: str) -> None:
        self.account_id = account_id
        self.reason = reason
        super().__init__(f"account {account_id}: {reason}")


class AccountList(list[Account]):
    """Accounts as served. `stale`: the service failed (`reason`) and this is the last good copy.

    `problems` maps account ids (or row positions) to what is wrong with them: rows skipped, accounts
    listed whose client code has no login (kept for exits, left out of entries).
    """

    def __init__(self, accounts: Iterable[Account] = (), *, fetched_at: float | None = None, stale: bool = False,
                 reason: str = "", problems: dict[str, str] | None = None) -> None:
        super().__init__(accounts)
        self.fetched_at = fetched_at
        self.stale = stale
        self.reason = reason
        self.problems = dict(problems or {})

    def __repr__(self) -> str:
        return f"AccountList({list(self)!r}, stale={self.stale})"


# The contract ------------------------------------------------------------------------------------
def parse_accountslist(body: bytes | str | Any) -> tuple[list[Account], dict[str, str]]:
    """The accounts of a reply and the rows skipped (label -> reason); `ValueError` if it is not the contract.

    Rows present but none of them usable is taken as a changed contract, not as "no accounts".
    """
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            raise ValueError("the reply is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("accountslist"), list):
        raise ValueError('the reply has no "accountslist" list')  # noqa: TRY004 - a bad reply, not a bug
    accounts: list[Account] = []
    skipped: dict[str, str] = {}
    seen: set[str] = set()
    for position, row in enumerate(body["accountslist"]):
        try:
            account = _account(row)
        except ValueError as exc:
            label = _row_label(row, position)
            skipped[label] = str(exc)
            continue
        if account.account_id in seen:
            skipped[f"row {position} ({account.account_id})"] = "accountId appears twice; the first row is used"
            continue
        seen.add(account.account_id)
        accounts.append(account)
    if body["accountslist"] and not accounts:
        raise ValueError(f"no usable row in accountslist ({'; '.join(f'{k}: {v}' for k, v in skipped.items())})")
    return accounts, skipped


def _row_label(row: Any, position: int) -> str:
    account_id = row.get("accountId") if isinstance(row, dict) else None
    if isinstance(account_id, (str, int)) and not isinstance(account_id, bool) and str(account_id).strip():
        return f"row {position} ({str(account_id).strip()[:ID_LIMIT]})"
    return f"row {position}"


def _account(row: Any) -> Account:
    if not isinstance(row, dict):
        raise ValueError("not an object")  # noqa: TRY004 - a bad row, not a bug
    raw_id = row.get("accountId")
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or not str(raw_id).strip():
        raise ValueError("accountId: required, a string or a whole number")
    account_id = str(raw_id).strip()
    if len(account_id) > ID_LIMIT:
        raise ValueError(f"accountId: longer than {ID_LIMIT} characters")
    name = row.get("pseudoAccountName")
    if name is not None and not isinstance(name, str):
        raise ValueError("pseudoAccountName: expected a string")
    fund = _decimal("fund", row.get("fund"))
    if fund is None or fund <= 0:
        raise ValueError("fund: required, rupees greater than 0")
    kind = row.get("stoplosstype")
    stoploss = _decimal("stoploss", row.get("stoploss"))
    if stoploss is not None and stoploss < 0:
        raise ValueError("stoploss: must not be negative")
    if stoploss == 0:
        stoploss = None  # no account stop; the alert's or the strategy's applies
    if kind in (None, ""):
        if stoploss is not None:
            raise ValueError("stoplosstype: required with a stoploss (number or percentage)")
        kind = None
    elif not isinstance(kind, str) or kind.strip().lower() not in ("number", "percentage"):
        raise ValueError("stoplosstype: expected number or percentage")
    else:
        kind = kind.strip().lower()
        if kind == "percentage" and stoploss is not None and stoploss >= 100:
            raise ValueError("stoploss: a percentage must be below 100")
    clientcode = row.get("clientcode")
    if clientcode is not None and not isinstance(clientcode, str):
        raise ValueError("clientcode: expected a string")
    max_loss = _decimal("maxdailyloss", row.get("maxdailyloss"))
    if max_loss is not None and max_loss <= 0:
        raise ValueError("maxdailyloss: rupees greater than 0")
    max_open = row.get("maxopentrades")
    if max_open is not None and (isinstance(max_open, bool) or not isinstance(max_open, int) or max_open < 1):
        raise ValueError("maxopentrades: a whole number of at least 1")
    broker_stop = row.get("brokerstop")
    if isinstance(broker_stop, str) and broker_stop.strip().lower() in ("true", "false"):
        broker_stop = broker_stop.strip().lower() == "true"
    if broker_stop is not None and not isinstance(broker_stop, bool):
        raise ValueError("brokerstop: expected true or false")
    return Account(account_id=account_id, name=(name or "").strip() or account_id, broker_stop=broker_stop,
                   fund=int((fund * 100).to_integral_value(ROUND_FLOOR)), stoploss_type=kind,
                   stoploss=stoploss, clientcode=(clientcode or "").strip() or None,
                   max_daily_loss=None if max_loss is None else int(max_loss * 100), max_open_trades=max_open)


def _decimal(field: str, value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{field}: expected a number")  # noqa: TRY004 - a bad field, not a bug
    try:
        number = Decimal(str(value).replace(",", "").strip())  # "1,00,000" as services often send it
    except InvalidOperation:
        raise ValueError(f"{field}: expected a number, got {str(value)[:20]!r}") from None
    if not number.is_finite() or abs(number) >= Decimal("1e12"):
        raise ValueError(f"{field}: expected a finite number below 1e12")
    return number


# Local accounts ----------------------------------------------------------------------------------
def demo_accounts(settings: Settings) -> list[Account]:
    """The demo account of the `DEMO_*` settings, then those of `DEMO_ACCOUNTS_FILE`."""
    demo = Account(account_id=settings.demo_account, name="Demo account", fund=round(settings.demo_fund * 100),
                   stoploss_type=settings.demo_stoploss_type,
                   stoploss=Decimal(str(settings.demo_stoploss)) if settings.demo_stoploss else None)
    extra = _file_accounts(settings)
    if any(account.account_id == demo.account_id for account in extra):
        raise SettingsError([("DEMO_ACCOUNTS_FILE", f"account {demo.account_id} is already DEMO_ACCOUNT")])
    return [demo, *extra]


def _file_accounts(settings: Settings) -> list[Account]:
    path = settings.demo_accounts_file
    if not path:
        return []
    try:
        accounts, skipped = parse_accountslist(Path(path).read_bytes())
    except OSError as exc:
        raise SettingsError([("DEMO_ACCOUNTS_FILE", f"{path}: {exc.strerror or exc}")]) from None
    except ValueError as exc:
        raise SettingsError([("DEMO_ACCOUNTS_FILE", f"{path}: {exc}")]) from None
    if skipped:  # a file the operator wrote is fixed, not half used
        raise SettingsError([("DEMO_ACCOUNTS_FILE", f"{path}: {label}: {reason}") for label, reason in skipped.items()])
    return accounts


def local_accounts(settings: Settings) -> list[Account]:
    if not settings.live:
        return demo_accounts(settings)
    if not settings.demo_accounts_file:
        reason = "required in live mode, or DEMO_ACCOUNTS_FILE listing the accounts to trade"
        raise SettingsError([("USERS_URL", reason)])
    accounts = _file_accounts(settings)
    if not accounts:
        raise SettingsError([("DEMO_ACCOUNTS_FILE", "lists no account")])
    return accounts
