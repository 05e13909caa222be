"""The accounts tickguard trades, from the account service or defined locally (trading-semantics §6).

`GET USERS_URL` answers the seed's contract, `{"accountslist": [{"accountId", "pseudoAccountName",
"fund", "stoplosstype", "stoploss", "clientcode"?, ...}]}` (`fund` in rupees, a number or a numeric
string; extra fields ignored). A bad row is skipped and reported; a body that is not that contract at
all is a failure of the service, like a timeout or a 5xx.

The list is used for `ACCOUNTS_TTL_S` and then fetched again, one fetch shared by every caller. When
the service fails, the last good copy serves on, marked stale: exits read it without ever waiting on
the network (`last_good`), entries are refused (`for_entry`). The last good copy is also kept on disk
next to the database, so a restart during an outage can still exit. Without `USERS_URL` the accounts
are local: paper mode serves the demo account of the `DEMO_*` settings plus `DEMO_ACCOUNTS_FILE`, live
mode exactly the accounts of `DEMO_ACCOUNTS_FILE` (and refuses to start without one).

An account naming a `clientcode` trades on that login of `CREDENTIALS_FILE` (an unknown client code
makes the account unusable, reported); without one it is a virtual sub-account on the default login.

    TickguardError
    └── AccountsError
        ├── AccountsUnavailable   (reason)              no fresh list to enter on
        ├── UnknownAccounts       (ids)                 an alert names accounts not listed
        └── AccountUnusable       (account_id, reason)  e.g. its client code has no login
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx
import msgspec

from service.accounts.model import Account
from service.accounts.credentials import Login, load_logins
from service.errors import SettingsError, TickguardError
from service.settings import Settings

__all__ = [
    "COPY_FILE_NAME",
    "FETCH_TIMEOUT_S",
    "AccountDirectory",
    "AccountList",
    "AccountUnusable",
    "AccountsError",
    "AccountsUnavailable",
    "UnknownAccounts",
    "demo_accounts",
    "parse_accountslist",
]

log = logging.getLogger("tickguard.accounts")

FETCH_TIMEOUT_S = 2.0
RETRY_PAUSE_S = 5.0  # after a failure, the stale copy serves this long before the service is asked again
MAX_BODY_BYTES = 4 * 1024 * 1024
COPY_FILE_NAME = "accounts.json"
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
    return Account(account_id=account_id, name=(name or "").strip() or account_id,
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


def _local_accounts(settings: Settings) -> list[Account]:
    if not settings.live:
        return demo_accounts(settings)
    if not settings.demo_accounts_file:
        reason = "required in live mode, or DEMO_ACCOUNTS_FILE listing the accounts to trade"
        raise SettingsError([("USERS_URL", reason)])
    accounts = _file_accounts(settings)
    if not accounts:
        raise SettingsError([("DEMO_ACCOUNTS_FILE", "lists no account")])
    return accounts


# The directory -----------------------------------------------------------------------------------
class AccountDirectory:
    """Accounts for entries (fresh only) and exits (the last good copy, never waiting).

    `clock` is wall-clock seconds (`time.time`): the on-disk copy carries its fetch time.
    """

    def __init__(self, settings: Settings, *, clock: Callable[[], float],
                 transport: httpx.AsyncBaseTransport | None = None, timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self.settings = settings
        self.clock = clock
        logins = load_logins(settings)
        self._default_login = logins[0]
        self._logins = {login.clientcode: login for login in logins}
        self._url = settings.users_url
        self._ttl_s = settings.accounts_ttl_s
        self._retry_pause_s = min(settings.accounts_ttl_s, RETRY_PAUSE_S)
        self._local: AccountList | None = None
        self._client: httpx.AsyncClient | None = None
        self._good: AccountList | None = None
        self._fresh_until = -math.inf
        self._retry_at = -math.inf
        self._failure = ""
        self._inflight: asyncio.Future[AccountList] | None = None
        self._copy_path = Path(settings.tickguard_db).parent / COPY_FILE_NAME
        if not self._url:
            self._local = AccountList(_local_accounts(settings), fetched_at=clock())
        else:
            self._client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(timeout_s),
                                             follow_redirects=False)
            self._good = self._read_copy()
        for account in self._local or ():
            reason = self.unusable_reason(account)
            if reason:
                self._local.problems[account.account_id] = reason
                log.warning("account %s is unusable: %s", account.account_id, reason)

    @property
    def source(self) -> str:
        return "service" if self._url else "local"

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    # Reading ------------------------------------------------------------------------------------
    def last_good(self) -> AccountList | None:
        """The freshest copy there is, stale or not, without touching the network: for exits."""
        if self._local is not None:
            return AccountList(self._local, fetched_at=self._local.fetched_at, problems=self._local.problems)
        if self._good is None:
            return None
        stale = self.clock() >= self._fresh_until
        reason = (self._failure or f"older than ACCOUNTS_TTL_S={self._ttl_s:g}") if stale else ""
        return AccountList(self._good, fetched_at=self._good.fetched_at, stale=stale, reason=reason,
                           problems=self._good.problems)

    async def accounts(self) -> AccountList:
        """Fresh within ACCOUNTS_TTL_S, else fetched; on failure the last good copy marked stale."""
        if self._local is not None:
            return self.last_good() or AccountList()
        now = self.clock()
        if self._good is not None and now < self._fresh_until:
            return self.last_good() or AccountList()
        if now < self._retry_at:  # the service just failed: do not make every caller wait on it again
            return self._stale_or_raise()
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._refresh())
            self._inflight.add_done_callback(self._fetched)
        # Shielded: a caller giving up (an alert's request cancelled) must not cancel the others' fetch.
        return await asyncio.shield(self._inflight)

    async def for_entry(self, ids: tuple[str, ...] | None = None) -> AccountList:
        """The usable accounts an entry trades on: all, or `ids` (all of which must be listed).

        Refused (`AccountsUnavailable`) when the only copy is stale; accounts that cannot trade (no
        login for their client code) are left out and named in `problems`.
        """
        listed = await self.accounts()
        if listed.stale:
            raise AccountsUnavailable(f"the account service is unavailable ({listed.reason}); new entries are "
                                      "refused until it answers (exits go on with the last good copy)")
        by_id = {account.account_id: account for account in listed}
        if ids is not None:
            unknown = tuple(i for i in dict.fromkeys(ids) if i not in by_id)
            if unknown:
                raise UnknownAccounts(unknown)
            chosen = [by_id[i] for i in dict.fromkeys(ids)]
        else:
            chosen = list(listed)
        usable, skipped = [], {}
        for account in chosen:
            reason = self.unusable_reason(account)
            if reason:
                skipped[account.account_id] = reason
            else:
                usable.append(account)
        if not usable:
            why = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or f"the {self.source} account list is empty"
            raise AccountsUnavailable(f"no account to trade on ({why})")
        return AccountList(usable, fetched_at=listed.fetched_at, problems=skipped)

    # Logins -------------------------------------------------------------------------------------
    def unusable_reason(self, account: Account) -> str:
        if account.clientcode is not None and account.clientcode not in self._logins:
            return f"client code {account.clientcode} has no login (add it to CREDENTIALS_FILE)"
        return ""

    def login_for(self, account: Account) -> Login:
        """The account's own login, or the default login for a virtual sub-account."""
        if account.clientcode is None:
            return self._default_login
        reason = self.unusable_reason(account)
        if reason:
            raise AccountUnusable(account.account_id, reason)
        return self._logins[account.clientcode]

    def status(self) -> dict[str, Any]:
        """For health and the dashboard: where accounts come from and how current they are."""
        copy = self.last_good()
        return {"source": self.source, "accounts": len(copy) if copy is not None else None,
                "fetched_at": copy.fetched_at if copy is not None else None,
                "stale": copy.stale if copy is not None else True, "failure": self._failure,
                "problems": copy.problems if copy is not None else {}}

    # Fetching -----------------------------------------------------------------------------------
    def _fetched(self, future: asyncio.Future[AccountList]) -> None:
        if self._inflight is future:
            self._inflight = None
        if not future.cancelled():
            future.exception()  # retrieved here, so a fetch nobody awaits any more is not reported as lost

    def _stale_or_raise(self) -> AccountList:
        copy = self.last_good()
        if copy is None:
            raise AccountsUnavailable(f"the account service is unavailable ({self._failure}) "
                                      "and no earlier copy exists")
        return copy

    async def _refresh(self) -> AccountList:
        assert self._client is not None
        try:
            accounts, skipped = parse_accountslist(await self._get())
        except httpx.TimeoutException:
            return self._failed("no answer in time")
        except httpx.HTTPError as exc:
            return self._failed(f"unreachable: {exc.__class__.__name__}")
        except ValueError as exc:
            return self._failed(str(exc))
        now = self.clock()
        for account in accounts:
            reason = self.unusable_reason(account)
            if reason:
                skipped[account.account_id] = reason
        if skipped and (self._good is None or skipped != self._good.problems):
            log.warning("account service: %s", "; ".join(f"{k}: {v}" for k, v in skipped.items()))
        if self._failure:
            log.warning("account service answers again (%d accounts)", len(accounts))
        self._good = AccountList(accounts, fetched_at=now, problems=skipped)
        self._fresh_until = now + self._ttl_s
        self._retry_at = -math.inf
        self._failure = ""
        await asyncio.to_thread(self._write_copy, self._good)
        return self.last_good() or AccountList()

    async def _get(self) -> bytes:
        assert self._client is not None
        async with self._client.stream("GET", self._url, headers={"Accept": "application/json"}) as response:
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise ValueError(f"the reply is larger than {MAX_BODY_BYTES} bytes")
                chunks.append(chunk)
        return b"".join(chunks)

    def _failed(self, reason: str) -> AccountList:
        if reason != self._failure:  # the URL is never logged: it may carry a token
            log.warning("account service failed: %s; %s", reason,
                        "serving the last good copy to exits, refusing entries" if self._good else "no accounts yet")
        self._failure = reason
        self._retry_at = self.clock() + self._retry_pause_s
        return self._stale_or_raise()

    # The copy on disk ---------------------------------------------------------------------------
    def _url_digest(self) -> str:
        return hashlib.sha256(self._url.encode()).hexdigest()[:16]

    def _write_copy(self, copy: AccountList) -> None:
        document = {"service": self._url_digest(), "fetched_at": copy.fetched_at,
                    "accounts": msgspec.to_builtins(list(copy))}
        try:
            self._copy_path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=".accounts-", dir=self._copy_path.parent)
            try:
                with os.fdopen(fd, "w") as out:
                    json.dump(document, out)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, self._copy_path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as exc:
            log.warning("could not keep the account list on disk (%s): %s", self._copy_path, exc)

    def _read_copy(self) -> AccountList | None:
        try:
            document = json.loads(self._copy_path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring the account list on disk (%s): %s", self._copy_path, exc)
            return None
        try:
            if document.get("service") != self._url_digest():
                log.warning("ignoring the account list on disk: it came from another USERS_URL")
                return None
            accounts = msgspec.convert(document["accounts"], list[Account], strict=False)
            fetched_at = float(document["fetched_at"])
        except (AttributeError, KeyError, TypeError, ValueError, msgspec.ValidationError) as exc:
            log.warning("ignoring the account list on disk (%s): %s", self._copy_path, exc)
            return None
        return AccountList(accounts, fetched_at=fetched_at)
