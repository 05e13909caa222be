"""The account directory against a local fake account service (a real HTTP server in a thread)."""
from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.accounts.directory import (
    COPY_FILE_NAME,
    AccountDirectory,
    AccountsUnavailable,
    AccountUnusable,
    UnknownAccounts,
    demo_accounts,
    parse_accountslist,
)
from service.errors import CredentialsError, SettingsError
from service.settings import load_settings
from tests.support.servers import ServerThread

ROWS = [
    {"accountId": "A1", "pseudoAccountName": "Anil", "fund": 50000, "stoplosstype": "number", "stoploss": 500,
     "broker": "angel", "active": True},
    {"accountId": "A2", "pseudoAccountName": "Bina", "fund": "1,00,000.50", "stoplosstype": "Percentage",
     "stoploss": "2", "clientcode": "P0002"},
]
OTHER_LOGIN = {"clientcode": "P0002", "password": "4321", "api_key": "paper-other-key",
               "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}


class FakeAccountService:
    """Answers `mode`: ok (the contract with `rows`), 500, garbage, html, or hang (longer than the client waits)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.rows: list = list(ROWS)
        self.delay_s = 0.0
        self.hits = 0

    async def users(self, request: Request) -> Response:
        self.hits += 1
        if self.mode == "hang":
            await asyncio.sleep(1.0)
        elif self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.mode == "500":
            return JSONResponse({"error": "down"}, 500)
        if self.mode == "garbage":
            return JSONResponse({"users": self.rows})
        if self.mode == "html":
            return Response("<html>maintenance</html>", media_type="text/html")
        return JSONResponse({"accountslist": self.rows, "status": "ok"})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/users", self.users)])


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def service():
    fake = FakeAccountService()
    with ServerThread(fake.app()) as server:
        fake.url = f"{server.url}/users"
        yield fake


@pytest.fixture
async def make(tmp_path: Path):
    made: list[AccountDirectory] = []

    def build(clock: Clock | None = None, timeout_s: float = 2.0, **env: str) -> AccountDirectory:
        values = {"TICKGUARD_DB": str(tmp_path / "db" / "tickguard.db"), **env}
        settings = load_settings(values, env_file=str(tmp_path / "absent.env"))
        directory = AccountDirectory(settings, clock=clock or Clock(), timeout_s=timeout_s)
        made.append(directory)
        return directory

    yield build
    for directory in made:
        await directory.close()


async def test_the_contract_is_parsed_into_accounts(service, make):
    directory = make(USERS_URL=service.url)
    accounts = await directory.accounts()
    assert [a.account_id for a in accounts] == ["A1", "A2"] and not accounts.stale
    first, second = accounts
    assert (first.name, first.fund, first.stoploss_type, first.stoploss, first.clientcode) == \
        ("Anil", 5_000_000, "number", Decimal(500), None)
    assert (second.fund, second.stoploss_type, second.stoploss, second.clientcode) == \
        (10_000_050, "percentage", Decimal(2), "P0002")


def test_bad_rows_are_skipped_and_reported():
    rows = [{"accountId": "ok", "fund": 1000}, {"accountId": "neg", "fund": -5}, {"fund": 1000}, "row",
            {"accountId": "pct", "fund": 1000, "stoplosstype": "percentage", "stoploss": 100},
            {"accountId": "kind", "fund": 1000, "stoplosstype": "points", "stoploss": 1},
            {"accountId": "lone", "fund": 1000, "stoploss": 5}, {"accountId": "ok", "fund": 2000},
            {"accountId": 7, "fund": True}, {"accountId": 8, "fund": "12.5", "stoploss": 0, "stoplosstype": ""}]
    accounts, problems = parse_accountslist({"accountslist": rows})
    assert [(a.account_id, a.fund, a.stoploss) for a in accounts] == [("ok", 100_000, None), ("8", 1250, None)]
    assert problems == {
        "row 1 (neg)": "fund: required, rupees greater than 0",
        "row 2": "accountId: required, a string or a whole number",
        "row 3": "not an object",
        "row 4 (pct)": "stoploss: a percentage must be below 100",
        "row 5 (kind)": "stoplosstype: expected number or percentage",
        "row 6 (lone)": "stoplosstype: required with a stoploss (number or percentage)",
        "row 7 (ok)": "accountId appears twice; the first row is used",
        "row 8 (7)": "fund: expected a number",
    }


@pytest.mark.parametrize("body", [b"<html>", b"[]", b'{"accountslist": {}}', b'{"users": []}',
                                  b'{"accountslist": [{"accountId": "x"}]}'])
def test_a_body_that_is_not_the_contract_is_a_failure(body):
    with pytest.raises(ValueError):
        parse_accountslist(body)


def test_an_empty_list_is_a_valid_answer():
    assert parse_accountslist(b'{"accountslist": []}') == ([], {})


async def test_the_list_is_cached_for_the_ttl(service, make):
    clock = Clock()
    directory = make(clock, USERS_URL=service.url, ACCOUNTS_TTL_S="30")
    await directory.accounts()
    clock.now += 29
    await directory.accounts()
    assert service.hits == 1
    clock.now += 2
    service.rows = ROWS[:1]
    assert [a.account_id for a in await directory.accounts()] == ["A1"]
    assert service.hits == 2


async def test_concurrent_callers_share_one_fetch(service, make):
    service.delay_s = 0.2
    directory = make(USERS_URL=service.url)
    lists = await asyncio.gather(*(directory.accounts() for _ in range(20)))
    assert service.hits == 1 and all([a.account_id for a in found] == ["A1", "A2"] for found in lists)


async def test_a_caller_giving_up_does_not_cancel_the_others_fetch(service, make):
    service.delay_s = 0.2
    directory = make(USERS_URL=service.url)
    impatient = asyncio.ensure_future(directory.accounts())
    patient = asyncio.ensure_future(directory.accounts())
    await asyncio.sleep(0.05)
    impatient.cancel()
    assert len(await patient) == 2 and service.hits == 1


@pytest.mark.parametrize("mode, reason", [("500", "HTTP 500"), ("garbage", 'the reply has no "accountslist" list'),
                                          ("html", "the reply is not JSON"), ("hang", "no answer in time")])
async def test_an_outage_serves_the_last_good_copy_marked_stale(service, make, mode, reason):
    clock = Clock()
    directory = make(clock, timeout_s=0.3, USERS_URL=service.url)
    await directory.accounts()
    service.mode = mode
    clock.now += 31
    stale = await directory.accounts()
    assert [a.account_id for a in stale] == ["A1", "A2"] and stale.stale and stale.reason == reason
    with pytest.raises(AccountsUnavailable, match="new entries are refused"):
        await directory.for_entry()
    hits = service.hits
    copy = directory.last_good()
    assert copy is not None and copy.stale and len(copy) == 2 and service.hits == hits
    assert directory.status()["failure"] == reason


async def test_after_a_failure_callers_do_not_wait_on_the_service_again_at_once(service, make):
    clock = Clock()
    directory = make(clock, timeout_s=0.3, USERS_URL=service.url)
    await directory.accounts()
    service.mode = "hang"
    clock.now += 31
    await directory.accounts()
    hits = service.hits
    clock.now += 4
    assert (await directory.accounts()).stale and service.hits == hits
    service.mode = "ok"
    clock.now += 2
    recovered = await directory.accounts()
    assert not recovered.stale and service.hits == hits + 1
    assert [a.account_id for a in await directory.for_entry()] == ["A1"]  # A2's login is not configured here


async def test_no_copy_ever_means_unavailable(service, make):
    service.mode = "500"
    directory = make(USERS_URL=service.url)
    assert directory.last_good() is None
    with pytest.raises(AccountsUnavailable, match="HTTP 500"):
        await directory.accounts()
    with pytest.raises(AccountsUnavailable, match="HTTP 500"):
        await directory.for_entry()


async def test_a_restart_during_an_outage_still_has_the_copy_for_exits(service, make, tmp_path):
    first = make(USERS_URL=service.url)
    await first.accounts()
    copy_file = tmp_path / "db" / COPY_FILE_NAME
    assert json.loads(copy_file.read_text())["accounts"][0]["account_id"] == "A1"
    assert [p.name for p in copy_file.parent.iterdir()] == [COPY_FILE_NAME]  # no temporary file left behind
    service.mode = "500"
    restarted = make(USERS_URL=service.url)
    copy = restarted.last_good()
    assert copy is not None and [a.account_id for a in copy] == ["A1", "A2"] and copy.stale
    assert copy[1].stoploss == Decimal(2) and service.hits == 1
    with pytest.raises(AccountsUnavailable):
        await restarted.for_entry()
    assert (await restarted.accounts()).stale
    other = make(USERS_URL=service.url + "?desk=2")
    assert other.last_good() is None  # a copy from another service is not trusted


async def test_a_corrupt_copy_on_disk_is_ignored(service, make, tmp_path):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / COPY_FILE_NAME).write_text("{not json")
    service.mode = "500"
    directory = make(USERS_URL=service.url)
    assert directory.last_good() is None


@pytest.fixture
def credentials_file(tmp_path: Path):
    def write(mode: int = 0o600) -> str:
        path = tmp_path / "logins.json"
        path.write_text(json.dumps([OTHER_LOGIN]))
        path.chmod(mode)
        return str(path)

    return write


async def test_accounts_trade_on_their_own_login_or_as_virtual_sub_accounts(service, make, credentials_file):
    service.rows = [*ROWS, {"accountId": "A3", "pseudoAccountName": "Chitra", "fund": 1000, "clientcode": "Z9"}]
    directory = make(USERS_URL=service.url, CREDENTIALS_FILE=credentials_file())
    listed = await directory.accounts()
    assert [a.account_id for a in listed] == ["A1", "A2", "A3"]  # kept, so exits still find it
    assert listed.problems == {"A3": "client code Z9 has no login (add it to CREDENTIALS_FILE)"}
    virtual, own, orphan = listed
    assert directory.login_for(virtual).clientcode == "P0001"  # the default login
    assert directory.login_for(own).clientcode == "P0002" and directory.login_for(own).api_key == "paper-other-key"
    with pytest.raises(AccountUnusable, match="Z9"):
        directory.login_for(orphan)
    entry = await directory.for_entry()
    assert [a.account_id for a in entry] == ["A1", "A2"] and set(entry.problems) == {"A3"}
    assert [a.account_id for a in await directory.for_entry(("A2", "A3"))] == ["A2"]
    with pytest.raises(AccountsUnavailable, match="Z9"):
        await directory.for_entry(("A3",))


async def test_without_the_credentials_file_an_account_naming_a_client_code_is_unusable(service, make):
    directory = make(USERS_URL=service.url)
    entry = await directory.for_entry()
    assert [a.account_id for a in entry] == ["A1"] and "P0002" in entry.problems["A2"]


def test_a_credentials_file_readable_by_others_is_refused(make, credentials_file):
    with pytest.raises(CredentialsError, match="chmod 600"):
        make(CREDENTIALS_FILE=credentials_file(0o644))


async def test_unknown_account_ids_are_named(service, make):
    directory = make(USERS_URL=service.url)
    with pytest.raises(UnknownAccounts) as caught:
        await directory.for_entry(("A1", "B7", "C9"))
    assert caught.value.ids == ("B7", "C9")


async def test_paper_mode_without_a_service_serves_the_demo_account(make):
    directory = make(DEMO_ACCOUNT="D1", DEMO_FUND="25000", DEMO_STOPLOSS_TYPE="number", DEMO_STOPLOSS="300")
    (account,) = await directory.for_entry()
    assert (account.account_id, account.fund, account.stoploss_type, account.stoploss) == \
        ("D1", 2_500_000, "number", Decimal(300))
    assert directory.source == "local" and not directory.last_good().stale
    assert directory.login_for(account).clientcode == "P0001"


def demo_file(tmp_path: Path, rows: list) -> str:
    path = tmp_path / "demo-accounts.json"
    path.write_text(json.dumps({"accountslist": rows}))
    return str(path)


async def test_more_demo_accounts_come_from_a_file(make, tmp_path):
    path = demo_file(tmp_path, [{"accountId": "D2", "pseudoAccountName": "Second", "fund": 20000,
                                 "stoplosstype": "number", "stoploss": 200}])
    directory = make(DEMO_ACCOUNTS_FILE=path)
    assert [a.account_id for a in await directory.accounts()] == ["DEMO", "D2"]
    assert [a.account_id for a in await directory.for_entry(("D2",))] == ["D2"]
    settings = load_settings({"DEMO_ACCOUNTS_FILE": path}, env_file=str(tmp_path / "absent.env"))
    assert [a.name for a in demo_accounts(settings)] == ["Demo account", "Second"]


@pytest.mark.parametrize("rows, problem", [
    ([{"accountId": "D2", "fund": 0}], "fund"),
    ([{"accountId": "DEMO", "fund": 10}], "already DEMO_ACCOUNT"),
])
def test_a_bad_demo_accounts_file_stops_the_start(make, tmp_path, rows, problem):
    with pytest.raises(SettingsError, match=problem):
        make(DEMO_ACCOUNTS_FILE=demo_file(tmp_path, rows))
    with pytest.raises(SettingsError, match="DEMO_ACCOUNTS_FILE"):
        make(DEMO_ACCOUNTS_FILE=str(tmp_path / "missing.json"))


LIVE = {"TICKGUARD_MODE": "live", "SMARTAPI_USER": "A123", "SMARTAPI_PASS": "9876", "SMARTAPI_KEY": "live-key",
        "TOTP_SECRET": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "WEBHOOK_SECRET": "a-live-webhook-secret",
        "OPERATORS_FILE": "operators.json"}


async def test_live_mode_without_a_service_trades_only_the_accounts_of_the_file(make, tmp_path):
    with pytest.raises(SettingsError, match="USERS_URL"):
        make(**LIVE)
    directory = make(**LIVE, DEMO_ACCOUNTS_FILE=demo_file(tmp_path, [{"accountId": "L1", "fund": 30000}]))
    assert [a.account_id for a in await directory.for_entry()] == ["L1"]  # no made-up DEMO account in live mode
