from __future__ import annotations

import asyncio
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

    def __init__(self, listings: dict[tuple[str, str], list[dict]], fail: bool = False,
                 gate: asyncio.Event | None = None) -> None:
        self.listings = listings
        self.fail = fail
        self.gate = gate  # when given, every search waits for it (a broker that does not answer)
        self.calls: list[tuple[str, str]] = []
        self.waiting = 0
        self.cancelled = 0

    async def __call__(self, exchange: str, text: str) -> list[dict]:
        self.calls.append((exchange, text))
        if self.gate is not None:
            self.waiting += 1
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
            finally:
                self.waiting -= 1
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


async def test_search_scrip_answers_for_cash_symbols_the_master_lacks_in_the_background(book_for):
    search = ScripSearch(NEWCO)
    book = book_for(search=search)
    await book.open()
    assert (await book.equity("SBIN")).source == "master" and search.calls == []
    with pytest.raises(UnknownSymbol) as caught:
        await book.equity("NEWCO")  # answered from the index at once: the search runs behind it
    reason = caught.value.reason
    assert reason.startswith("NEWCO: no equity or index on NSE or BSE in the instrument master of 2025-11-25")
    assert "search (searchScrip) was started in the background" in reason
    await book.settled()
    newco = await book.equity("NEWCO")
    assert (newco.exchange, newco.token, newco.tradingsymbol, newco.source) == ("NSE", "777001", "NEWCO-EQ", "search")
    assert (newco.lotsize, newco.tick_size) == (1, SEARCH_TICK_PAISE)
    assert search.calls == [("NSE", "NEWCO")]
    assert json.loads(book.cache_path.read_text())["symbols"]["NEWCO"]["token"] == "777001"
    assert (await book.equity("NEWCO")).token == "777001" and len(search.calls) == 1  # cached for the day
    restarted = book_for()
    assert (await restarted.equity("NEWCO")).source == "search"
    await book.close()


async def test_search_scrip_misses_are_remembered_and_failures_logged_not_raised(book_for, caplog):
    quiet = ScripSearch({})
    book = book_for(search=quiet)
    with pytest.raises(UnknownSymbol) as caught:
        await book.equity("NOSUCH")
    assert caught.value.query == "NOSUCH"
    await book.settled()
    assert quiet.calls == [("NSE", "NOSUCH"), ("BSE", "NOSUCH")]
    with pytest.raises(UnknownSymbol) as again:
        await book.equity("NOSUCH")
    assert "did not find it either" in again.value.reason and len(quiet.calls) == 2  # not asked again so soon

    broken = book_for(search=ScripSearch(NEWCO, fail=True))
    for _ in range(2):  # a failure is not remembered: the next alert asks again
        with pytest.raises(UnknownSymbol) as caught:
            await broken.equity("NEWCO")
        assert "was started in the background" in caught.value.reason
        await broken.settled()
    assert broken._search.calls == [("NSE", "NEWCO")] * 2
    assert "symbol search of NEWCO failed: broker unreachable" in caplog.text
    with pytest.raises(UnknownSymbol) as caught:
        await book_for(search=ScripSearch(NEWCO)).contract("NEWCO25NOV25FUT")  # never for derivatives
    assert "searchScrip" not in caught.value.reason


async def test_unsearchable_tickers_and_lookups_without_search_start_no_search(book_for):
    search = ScripSearch(NEWCO)
    book = book_for(search=search)
    for ticker in ("NFO:NEWCO", "NEWCO9!", "NSE:", "NEW CO"):
        with pytest.raises(UnknownSymbol) as caught:
            await book.equity(ticker)
        assert "searchScrip" not in caught.value.reason
    with pytest.raises(UnknownSymbol) as caught:
        await book.equity("NEWCO", search=False)  # an option's underlying: its chain is the master's only
    assert caught.value.reason.startswith("NEWCO: no equity or index") and "searchScrip" not in caught.value.reason
    await book.settled()
    assert search.calls == []


async def test_alerts_for_an_unknown_symbol_never_wait_for_a_search_that_hangs(book_for):
    gate = asyncio.Event()
    search = ScripSearch(NEWCO, gate=gate)
    book = book_for(search=search)
    await book.open()
    async with asyncio.timeout(10):  # a deadline for a hang, not a latency bound
        answers = await asyncio.gather(*(book.equity("NEWCO") for _ in range(6)), book.equity("OTHER"),
                                       return_exceptions=True)
    assert all(isinstance(a, UnknownSymbol) for a in answers)
    reasons = [a.reason for a in answers]
    assert "was started" in reasons[0] and all("already running" in r for r in reasons[1:6])
    await asyncio.sleep(0)
    assert search.calls == [("NSE", "NEWCO")]  # six alerts, one search; OTHER waits its turn
    gate.set()
    await book.settled()
    assert (await book.equity("NEWCO")).token == "777001"
    assert search.calls == [("NSE", "NEWCO"), ("NSE", "OTHER"), ("BSE", "OTHER")]
    await book.close()


async def test_closing_the_book_cancels_a_hanging_search(book_for):
    search = ScripSearch(NEWCO, gate=asyncio.Event())
    book = book_for(search=search)
    with pytest.raises(UnknownSymbol):
        await book.equity("NEWCO")
    await asyncio.sleep(0)
    assert search.calls == [("NSE", "NEWCO")] and search.waiting == 1
    async with asyncio.timeout(10):
        await book.close()
    assert search.waiting == 0 and search.cancelled == 1
    with pytest.raises(UnknownSymbol) as caught:
        await book.equity("OTHER")
    assert "the service is stopping" in caught.value.reason


async def test_the_index_is_refreshed_in_the_background_once_a_new_master_day_begins(book_for, master_server):
    clock = Clock(ist(hour=10))
    book = book_for(clock)
    await book.open()
    clock.moment = ist(DAY + timedelta(days=1), 7, 0)
    await book.equity("SBIN")
    assert master_server.hits == 1  # before 08:00 IST the master of the 25th still holds
    clock.moment = ist(DAY + timedelta(days=1), 9, 0)
    master_server.gate.clear()  # the download hangs: lookups go on with the old index
    try:
        async with asyncio.timeout(10):
            assert (await book.equity("TCS")).token == "11536"
            assert (await book.option("NIFTY", price=2_501_000, right="CE")).lotsize == 75
        assert book.index.date == DAY
    finally:
        master_server.gate.set()
    await book.settled()
    assert (book.index.date, master_server.hits) == (DAY + timedelta(days=1), 2)
    await book.close()


async def test_an_unreachable_master_keeps_the_old_index_and_waits_before_retrying(book_for, master_server):
    clock = Clock(ist(hour=10))
    book = book_for(clock)
    await book.open()
    master_server.status = 503
    clock.moment = ist(DAY + timedelta(days=1), 9, 0)
    assert (await book.equity("SBIN")).token == "3045"
    await book.settled()
    assert (await book.equity("TCS")).token == "11536"
    await book.settled()
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
    with pytest.raises(UnknownSymbol):
        await lacking.equity("NSE:TRENT")
    await lacking.settled()
    trent = await lacking.equity("NSE:TRENT")
    assert (trent.token, trent.tradingsymbol, trent.source) == ("1964", "TRENT-EQ", "search")
