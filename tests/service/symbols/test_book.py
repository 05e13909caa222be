from __future__ import annotations

import json
from datetime import datetime, timedelta

import msgspec
import pytest

from service.symbols import SymbolBook, UnknownSymbol
from service.symbols.book import SEARCH_TICK_PAISE

from .conftest import DAY, ist


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


class ScripSearch:
    """Stands in for the broker's searchScrip: answers from a fixed table and records the calls."""

    def __init__(self, listings: dict[tuple[str, str], list[dict]], fail: bool = False) -> None:
        self.listings = listings
        self.fail = fail
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, exchange: str, text: str) -> list[dict]:
        self.calls.append((exchange, text))
        if self.fail:
            raise ConnectionError("broker unreachable")
        return self.listings.get((exchange, text), [])


NEWCO = {("NSE", "NEWCO"): [{"exchange": "NSE", "tradingsymbol": "NEWCO-EQ", "symboltoken": "777001"},
                            {"exchange": "NSE", "tradingsymbol": "NEWCO-BE", "symboltoken": "777002"}]}


@pytest.fixture
def book_for(master_server, settings_for):
    def make(clock: Clock | None = None, search=None) -> SymbolBook:
        return SymbolBook(settings_for(master_server.url), search=search, now=clock or Clock(ist()), isolated=False)

    return make


async def test_resolutions_are_cached_and_reused_across_restarts(book_for, master_server, settings_for):
    book = book_for()
    await book.open()
    assert book.cache.rebuilt == "no cache file yet"
    assert (await book.equity("nse:m_m")).tradingsymbol == "M&M-EQ"
    option = await book.option("NIFTY", price=2_501_000, right="CE", strike="OTM1")
    stored = json.loads(book.cache_path.read_text())
    assert stored["master_date"] == DAY.isoformat()
    assert stored["symbols"]["NSE:M_M"] == {"token": "2031", "exchange": "NSE", "tradingsymbol": "M&M-EQ",
                                            "lotsize": 1, "tick_size": 5}
    assert stored["symbols"][option.key]["lotsize"] == 75

    restarted = book_for()
    await restarted.open()
    assert restarted.cache.rebuilt is None and master_server.hits == 1
    assert await restarted.contract(option.key) == option
    assert (await restarted.equity("NSE:M_M")).token == "2031"


async def test_a_stale_cache_file_is_resolved_again_on_the_new_master(book_for, settings_for, master_server):
    settings = settings_for(master_server.url)
    old = {"token": "1", "exchange": "NFO", "tradingsymbol": "NIFTY28OCT25FUT", "lotsize": 50, "tick_size": 5}
    gone = {"token": "5", "exchange": "NSE", "tradingsymbol": "DELISTED-EQ", "lotsize": 1, "tick_size": 5}
    with open(settings.symbol_tokens_file, "w") as out:
        json.dump({"version": 1, "master_date": "2025-10-20", "symbols": {"NIFTY1!": old, "DELISTED": gone}}, out)
    book = book_for()
    await book.open()
    assert book.cache.rebuilt.startswith("stale")
    stored = json.loads(book.cache_path.read_text())
    assert set(stored["symbols"]) == {"NIFTY1!"}
    assert stored["symbols"]["NIFTY1!"]["tradingsymbol"] == "NIFTY25NOV25FUT"


async def test_a_corrupt_cache_file_does_not_stop_the_book(book_for, settings_for, master_server):
    settings = settings_for(master_server.url)
    with open(settings.symbol_tokens_file, "w") as out:
        out.write('{"version": 1, "symbols": {"SBIN": ')
    book = book_for()
    await book.open()
    assert book.cache.rebuilt.startswith("corrupt")
    assert (await book.equity("SBIN")).token == "3045"
    assert json.loads(book.cache_path.read_text())["symbols"]["SBIN"]["token"] == "3045"


async def test_a_cached_continuous_future_rolls_at_the_expiry_close(book_for):
    clock = Clock(ist(hour=10))
    book = book_for(clock)
    assert (await book.equity("NIFTY1!")).tradingsymbol == "NIFTY25NOV25FUT"
    clock.moment = ist(hour=15, minute=31)
    assert (await book.equity("NIFTY1!")).tradingsymbol == "NIFTY30DEC25FUT"
    assert json.loads(book.cache_path.read_text())["symbols"]["NIFTY1!"]["tradingsymbol"] == "NIFTY30DEC25FUT"


async def test_search_scrip_answers_for_cash_symbols_the_master_lacks(book_for):
    search = ScripSearch(NEWCO)
    book = book_for(search=search)
    await book.open()
    assert (await book.equity("SBIN")).source == "master" and search.calls == []
    newco = await book.equity("NEWCO")
    assert (newco.exchange, newco.token, newco.tradingsymbol, newco.source) == ("NSE", "777001", "NEWCO-EQ", "search")
    assert (newco.lotsize, newco.tick_size) == (1, SEARCH_TICK_PAISE)
    assert search.calls == [("NSE", "NEWCO")]
    assert (await book.equity("NEWCO")).token == "777001" and len(search.calls) == 1  # cached for the day
    restarted = book_for()
    assert (await restarted.equity("NEWCO")).source == "search"


async def test_search_scrip_misses_and_failures_surface_as_unknown_symbols(book_for):
    quiet = ScripSearch({})
    book = book_for(search=quiet)
    with pytest.raises(UnknownSymbol) as caught:
        await book.equity("NOSUCH")
    assert caught.value.query == "NOSUCH" and quiet.calls == [("NSE", "NOSUCH"), ("BSE", "NOSUCH")]
    broken = book_for(search=ScripSearch(NEWCO, fail=True))
    with pytest.raises(UnknownSymbol):
        await broken.equity("NEWCO")
    with pytest.raises(UnknownSymbol):
        await book_for(search=ScripSearch(NEWCO)).contract("NEWCO25NOV25FUT")  # never for derivatives


async def test_the_index_is_refreshed_once_a_new_master_day_begins(book_for, master_server):
    clock = Clock(ist(hour=10))
    book = book_for(clock)
    await book.open()
    clock.moment = ist(DAY + timedelta(days=1), 7, 0)
    await book.equity("SBIN")
    assert master_server.hits == 1  # before 08:00 IST the master of the 25th still holds
    clock.moment = ist(DAY + timedelta(days=1), 9, 0)
    await book.equity("SBIN")
    assert (book.index.date, master_server.hits) == (DAY + timedelta(days=1), 2)


async def test_an_unreachable_master_keeps_the_old_index_and_waits_before_retrying(book_for, master_server):
    clock = Clock(ist(hour=10))
    book = book_for(clock)
    await book.open()
    master_server.status = 503
    clock.moment = ist(DAY + timedelta(days=1), 9, 0)
    assert (await book.equity("SBIN")).token == "3045"
    assert (await book.equity("TCS")).token == "11536"
    assert (book.index.date, master_server.hits) == (DAY, 2)  # one failed attempt, then a pause


async def test_find_lists_the_resolution_first(book_for):
    book = book_for()
    await book.open()
    found = book.find("M_M")
    assert found[0].tradingsymbol == "M&M-EQ"
    chain = book.find("NIFTY25NOV2525000", limit=5)
    assert [s.tradingsymbol for s in chain[:2]] == ["NIFTY25NOV2525000CE", "NIFTY25NOV2525000PE"]
    assert book.find("NOTHINGLIKEIT") == []


@pytest.fixture
def paper_exchange(tmp_path):
    """The paper exchange itself on a free port: its master route and its searchScrip."""
    import pyotp

    from paper.app import create_app
    from paper.auth import PaperLogin
    from paper.exchange import PaperConfig, PaperExchange
    from tests.support.servers import ServerThread

    login = PaperLogin("P0001", "1234", "paper-demo-key", "TICKGUARDPAPERDEMOTOTPSECRET2345")
    exchange = PaperExchange(PaperConfig(logins=(login,), db_path=tmp_path / "paper.db", tick_ms=0, today=DAY))
    with ServerThread(create_app(exchange)) as server:
        yield server.url, login, pyotp.TOTP(login.totp_secret)


def _paper_search(url: str, login, totp):
    """searchScrip as the broker adapter would call it: log in once, then POST the search."""
    import httpx

    headers = {"X-PrivateKey": login.api_key, "Content-Type": "application/json", "Accept": "application/json"}
    session: dict[str, str] = {}

    async def search(exchange: str, text: str) -> list[dict]:
        async with httpx.AsyncClient(base_url=url, headers=headers) as client:
            if not session:
                reply = await client.post("/rest/auth/angelbroking/user/v1/loginByPassword",
                                          json={"clientcode": login.clientcode, "password": login.pin, "totp": totp.now()})
                session["jwt"] = reply.json()["data"]["jwtToken"]
            reply = await client.post("/rest/secure/angelbroking/order/v1/searchScrip",
                                      json={"exchange": exchange, "searchscrip": text},
                                      headers={"Authorization": f"Bearer {session['jwt']}"})
            return reply.json()["data"] or []

    return search


async def test_paper_mode_reads_the_paper_exchanges_master_and_search(paper_exchange, master_server, universe, settings_for):
    url, login, totp = paper_exchange
    paper = SymbolBook(settings_for("", PAPER_URL=url), now=Clock(ist()), isolated=False)
    await paper.open()
    assert paper.url == url + "/OpenAPI_File/files/OpenAPIScripMaster.json"
    assert len(paper.index) == len(universe) and (await paper.equity("TRENT")).token == "1964"

    # A master that lacks TRENT: the book falls back to the exchange's searchScrip.
    master_server.body = msgspec.json.encode([row for row in universe.master() if row["name"] != "TRENT"])
    lacking = SymbolBook(settings_for(master_server.url, SYMBOLS_DIR=str(paper.symbols_dir) + "-other",
                                      SYMBOL_TOKENS_FILE=str(paper.cache_path) + ".other"),
                         search=_paper_search(url, login, totp), now=Clock(ist()), isolated=False)
    trent = await lacking.equity("NSE:TRENT")
    assert (trent.token, trent.tradingsymbol, trent.source) == ("1964", "TRENT-EQ", "search")
