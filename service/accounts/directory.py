"""The accounts tickguard trades, from the account service or defined locally (trading-semantics §6).

`GET USERS_URL` answers the seed's contract, `{"accountslist": [{"accountId", "pseudoAccountName",
"fund", "stoplosstype", "stoploss", "clientcode"?, ...}]}` (`fund` in rupees, a number or a numeric
string; extra fields ignored). A bad row is skipped and reported; a body that is not that contract at
all is a failure of the service, like a timeout or a 5xx.

The contract and its parsing, and the local lists, are `lists.py`. The list is used for `ACCOUNTS_TTL_S` and then fetched again, one fetch shared by every caller. When
the service fails, the last good copy serves on, marked stale: exits read it without ever waiting on
the network (`last_good`), entries are refused (`for_entry`). The last good copy is also kept on disk
next to the database, so a restart during an outage can still exit. Without `USERS_URL` the accounts
are local: paper mode serves the demo account of the `DEMO_*` settings plus `DEMO_ACCOUNTS_FILE`, live
mode exactly the accounts of `DEMO_ACCOUNTS_FILE` (and refuses to start without one).

An account naming a `clientcode` trades on that login of `CREDENTIALS_FILE` (an unknown client code
makes the account unusable, reported); without one it is a virtual sub-account on the default login.
Its errors (`AccountsError` and below) are defined in `lists.py`.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec

from service.accounts.credentials import Login, load_logins
from service.accounts.lists import (
    AccountList,
    AccountsError,
    AccountsUnavailable,
    AccountUnusable,
    UnknownAccounts,
    demo_accounts,
    local_accounts,
    parse_accountslist,
)
from service.accounts.model import Account
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
            self._local = AccountList(local_accounts(settings), fetched_at=clock())
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
