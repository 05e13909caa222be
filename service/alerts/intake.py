"""The intake: an alert body in, a decided and committed outcome out (trading-semantics §1-§4).

`plan` parses and resolves the alert before anything is stored (its instrument, accounts and stop
rules; every problem raises `AlertInvalid`). `accept` deduplicates and decides it against the
strategy's open trades in one write transaction — the alert and its new trades are committed before
an outcome is returned — then hands the entries, closes and part-exits to execution. The outcome is
a value: `Accepted`, `Duplicate`, `Declined` (stored as refused: halted, entry window closed, a
limit reached) or `Invalid` (nothing stored). `service.web` maps each to HTTP once.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import msgspec

from service.accounts.directory import AccountDirectory, AccountsUnavailable, UnknownAccounts
from service.accounts.model import Account
from service.alerts.instruments import resolve_instrument
from service.alerts.dispatch import Accepted, Dispatch
from service.alerts.parse import Alert, AlertInvalid, dedup_key, parse_alert
from service.alerts.plan import ID_DEDUP_S, Plan, check_rules, decide_for, names_contract, new_trade
from service.alerts.policy import Policy, Refusal
from service.alerts.prices import UNCHECKED, LivePrices, PriceCheck, judge, opens_nothing
from service.alerts.strategies import Strategy, resolve_rules
from service.halts import Halts
from service.limits import EngineLimits
from service.metrics import Metrics
from service.settings import Settings
from service.store import Store
from service.symbols import SymbolBook
from service.trades import TradeRecord

__all__ = ["Accepted", "Declined", "Duplicate", "Intake", "Invalid", "Outcome"]


class Invalid(msgspec.Struct, frozen=True):
    """The alert asks for what may never be (or is malformed): nothing was stored."""
    errors: list[dict[str, str]]


class Duplicate(msgspec.Struct, frozen=True):
    """The same alert was taken within its dedup window: nothing new was stored or sent."""
    alert_id: int
    trades: list[int]


class Declined(msgspec.Struct, frozen=True):
    """Stored as refused: no entry may be taken now, and there was nothing to close. `rule` names what
    refused it: halt, window, limits, accounts (not listed, or its login unknown) or position (nothing
    to close, already at the size asked)."""
    alert_id: int
    reason: str
    unavailable: bool  # the account list is stale (the service is unavailable), not a halt or a limit
    rule: str = "position"


Outcome = Accepted | Duplicate | Declined | Invalid
NOT_LISTED = "not in the account list"
LOGIN_UNKNOWN = "its login"


class Intake:
    def __init__(self, *, settings: Settings, store: Store, symbols: SymbolBook, strategies: dict[str, Strategy],
                 accounts: AccountDirectory, entries_open: Callable[[str], bool], leverage: Mapping[str, Decimal],
                 dispatch: Dispatch, halts: Halts, limits: EngineLimits, metrics: Metrics,
                 announce: Callable[[str, dict[str, Any]], None], logins: set[str],
                 prices: LivePrices | None = None, clock: Callable[[], float] = time.time,
                 entry_window: Callable[[str], str | None] = lambda exchange: None,
                 publish: Callable[[TradeRecord], None] = lambda trade: None) -> None:
        self.settings = settings
        self.store = store
        self.symbols = symbols
        self.strategies = strategies
        self.accounts = accounts
        self.entries_open = entries_open  # the exchange's entry window is open now
        self.entry_window = entry_window  # today's entry window of an exchange, "09:15-15:00"; None: closed today
        self.leverage = leverage  # by product: what a stop check at alert time may assume
        self.dispatch = dispatch
        self.halts = halts
        self.limits = limits
        self.metrics = metrics
        self.announce = announce
        self.logins = logins  # the client codes of CREDENTIALS_FILE beyond the default login
        self.prices = prices  # live prices for the alert price check (None: never checked)
        self.clock = clock
        self.publish = publish  # every trade the alert opened, once committed (the listeners)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def take(self, body: dict[str, Any], source: str = "opentrade") -> Outcome:
        """Plan and accept one alert body; an invalid one is counted and returned as `Invalid`."""
        try:
            plan = await self.plan(body)
        except AlertInvalid as exc:
            self.metrics.count_alert("invalid")
            return Invalid(exc.errors)
        return await self.accept(plan, source)

    # Plan -----------------------------------------------------------------------------------------
    async def plan(self, body: dict[str, Any]) -> Plan:
        alert = parse_alert(body)
        symbol, underlying = await resolve_instrument(alert, self.symbols)
        price = await self.check_price(alert, underlying or symbol)
        if price.used == "live":  # planned at the live price: the stop check, the strike, sizing
            alert = msgspec.structs.replace(alert, price=Decimal(price.live or 0) / 100)
            if alert.type == "option" and not names_contract(alert.symbolname):
                symbol, underlying = await resolve_instrument(alert, self.symbols)
        if (alert.type == "option" or symbol.is_future) and alert.quantity is not None and alert.quantity % symbol.lotsize:
            raise AlertInvalid([{"field": "quantity", "reason": f"not a multiple of the lot size {symbol.lotsize}"}])
        accounts, entry_refusal = await self._accounts_for(alert)
        strategy = self.strategies.get(alert.strategyname)
        if alert.percent is not None and alert.signal.value == "sell" and not alert.chartink_word \
                and strategy is not None and strategy.policy is not Policy.CLOSE_ONLY:
            raise AlertInvalid([{"field": "percent", "reason": f"under {strategy.policy} a sell opens the other side: "
                                                              "percent goes with exit, cover or a close_only sell"}])
        self.limits.apply(accounts, alert.strategyname, strategy)
        rules: dict[str, tuple[dict[str, Any], str]] = {}
        for account in accounts:
            rules[account.account_id] = resolve_rules(alert, strategy, account)
            if alert.type == "equity" or alert.stop_basis == "underlying":  # an option's premium is known at entry
                leverage = self.leverage.get(alert.product, Decimal(1))
                check_rules(alert, rules[account.account_id][0], underlying or symbol, account.fund, leverage)
        now = self.now_ms()
        window_s = ID_DEDUP_S if alert.id else self.settings.dedup_window_s
        stored = {k: v for k, v in body.items() if k != "token"} | price.stored()
        return Plan(alert, dedup_key(body), now + int(window_s * 1000), stored, symbol, rules, underlying,
                    accounts, entry_refusal, contract_named=alert.type == "option" and names_contract(alert.symbolname),
                    strategy=strategy, price=price)

    async def check_price(self, alert: Alert, instrument: Any) -> PriceCheck:
        """The alert's price against the live price of `instrument` (an option's underlying), when the
        alert may open a trade and PRICE_SANITY_PCT or PRICE_SOURCE=live asks for one."""
        pct = Decimal(str(self.settings.price_sanity_pct))
        source = self.settings.price_source
        if self.prices is None or opens_nothing(alert) or (not pct and source != "live"):
            return UNCHECKED
        live = await self.prices.price(instrument.exchange, instrument.tradingsymbol, instrument.token)
        return judge(alert, live, pct, source, f"{instrument.exchange}:{instrument.tradingsymbol}")

    async def _accounts_for(self, alert: Alert) -> tuple[list[Account], str]:
        """The accounts an alert trades on, and why entries are refused when the list is not fresh."""
        try:
            accounts = list(await self.accounts.for_entry(alert.accounts))
        except UnknownAccounts as exc:
            raise AlertInvalid([{"field": "accounts", "reason": f"not listed: {', '.join(exc.ids)}"}]) from None
        except AccountsUnavailable as exc:
            last = self.accounts.last_good() or []
            wanted = set(alert.accounts) if alert.accounts else None
            return [a for a in last if wanted is None or a.account_id in wanted], exc.reason
        return accounts, ""

    # Accept ---------------------------------------------------------------------------------------
    async def accept(self, plan: Plan, source: str = "opentrade") -> Outcome:
        now = self.now_ms()
        strategy = self.strategies.get(plan.alert.strategyname)
        policy = strategy.policy if strategy else Policy.CLOSE_ONLY
        entries_open = self.entries_open(plan.symbol.exchange)
        halted = self.halts.global_halt
        rule, general = self._general_refusal(plan, entries_open)
        by_id = {account.account_id: account for account in plan.accounts}

        def work(db) -> Outcome | tuple:
            Store.lock_strategy(db, plan.alert.strategyname)  # decisions of one strategy, one at a time (many intakes)
            if plan.alert.id:  # an alert's own id deduplicates across strategies: its key is locked too
                Store.lock(db, "alert", plan.key)
            duplicate = Store.find_duplicate(db, plan.key, now)
            if duplicate is not None:  # kept as history (GET /alerts); never itself matched as the original
                copy = Store.insert_alert(db, now_ms=now, source=source, dedup_key=plan.key, dedup_until_ms=now,
                                          body=plan.stored_body, status="duplicate",
                                          reason=f"duplicate of alert {duplicate.id}")
                Store.set_alert_trades(db, copy, duplicate.trade_ids)
                return Duplicate(duplicate.id, duplicate.trade_ids)
            open_trades = Store.open_trades_of(db, plan.alert.strategyname)
            ids = list(by_id) if plan.alert.accounts is None else list(plan.alert.accounts)
            ids += sorted({t.account for t in open_trades} - set(ids))
            opens: list[tuple[str, str, int | None]] = []
            closing: list[int] = []
            reducing: list[tuple[int, int]] = []
            notes: list[str] = []
            rules: list[str] = []  # the rule of each note
            refused: list[tuple[str, Refusal]] = []
            for account_id in ids:
                decision = decide_for(plan, account_id, open_trades, policy, plan.symbol.lotsize)
                closing += decision.close
                reducing += decision.reduce
                if decision.note:
                    notes.append(f"{account_id}: {decision.note}")
                    rules.append("position")
                if decision.refused is not None:
                    refused.append((account_id, decision.refused))
                if decision.open_side is None:
                    continue
                refusal = general or self.entry_refusal(by_id.get(account_id), plan.alert.strategyname, db)
                if refusal:
                    notes.append(f"{account_id}: {refusal}")
                    rules.append(rule or _account_rule(refusal))
                else:
                    opens.append((account_id, decision.open_side, decision.open_quantity))
            if opens and plan.price.refusal:  # an entry at a price far from the market's: nothing stored
                return Invalid([{"field": "price", "reason": plan.price.refusal}])
            if not opens and not closing and not reducing and refused:  # the alert asks for what may never be: nothing stored
                return Invalid([{"field": refused[0][1].field, "reason": refused[0][1].reason}])
            if not opens and not closing and not reducing and (general or notes):
                reason = general or "; ".join(notes)
                alert_id = Store.insert_alert(db, now_ms=now, source=source, dedup_key=plan.key, dedup_until_ms=now,
                                              body=plan.stored_body, status="refused", reason=reason)
                return Declined(alert_id, reason, unavailable=bool(plan.entry_refusal) and not halted,
                                rule=rule or next((r for r in rules if r != "position"), "position"))
            alert_id = Store.insert_alert(db, now_ms=now, source=source, dedup_key=plan.key,
                                          dedup_until_ms=plan.dedup_until_ms, body=plan.stored_body, status="accepted",
                                          reason="; ".join(notes + [f"{a}: {r.leg} refused: {r.reason}" for a, r in refused]))
            created = [Store.insert_trade(db, new_trade(plan, by_id[a], side, now, alert_id)) for a, side, _ in opens]
            opened = [(trade.id, by_id[a], qty) for trade, (a, _, qty) in zip(created, opens)]
            Store.set_alert_trades(db, alert_id, [t for t, _, _ in opened] + closing + [t for t, _ in reducing])
            accepted = Accepted(alert_id, [t for t, _, _ in opened], closing, reducing, refused, notes)
            self.dispatch.in_transaction(db, plan, accepted, opened, now)
            return accepted, opened, created

        outcome = await self.store.db.write(work)
        if isinstance(outcome, Invalid):
            self.metrics.count_alert("invalid")
            return outcome
        if isinstance(outcome, Duplicate):
            self.metrics.count_alert("duplicate")
            return outcome
        if isinstance(outcome, Declined):
            self.metrics.count_alert("refused")
            self.announce("alert_refused", {"alert_id": outcome.alert_id, "reason": outcome.reason,
                                            "alert": plan.stored_body})
            return outcome
        accepted, opened, created = outcome
        for trade in created:  # as stored: the feed and the trade log need not read them back
            self.publish(trade)
        self.metrics.count_alert("accepted")
        self.announce("alert_accepted", {"alert_id": accepted.alert_id, "trades": accepted.trades,
                                         "closing": accepted.closing, "alert": plan.stored_body})
        self.dispatch.after_commit(plan, accepted, opened)
        return accepted

    def _general_refusal(self, plan: Plan, entries_open: bool) -> tuple[str, str]:
        """(rule, reason) refusing every entry of the alert now, or ("", "")."""
        if self.halts.global_halt:
            operator = self.halts.operator
            return "halt", f"new entries are halted (operator): {operator.reason if operator else 'halted by the operator'}"
        if plan.entry_refusal:
            return "accounts", plan.entry_refusal
        if not entries_open:
            exchange = plan.symbol.exchange
            window = self.entry_window(exchange)
            return "window", (f"outside the entry window {window} of {exchange}" if window else
                              f"outside the entry window of {exchange}: it does not trade today")
        return "", ""

    def entry_refusal(self, account: Account | None, strategy: str = "", db: Any = None) -> str:
        """Why this account may not take an entry for this strategy now, or ""."""
        if account is None:
            return NOT_LISTED
        if ("account", account.account_id) in self.halts.loss:
            return f"daily loss limit reached for account {account.account_id}"
        if ("strategy", strategy) in self.halts.loss:
            return f"daily loss limit reached for strategy {strategy}"
        if db is not None and account.max_open_trades is not None \
                and Store.open_trade_count(db, account=account.account_id) >= account.max_open_trades:
            return f"the account already has {account.max_open_trades} open trades (its maximum)"
        limit = self.strategies.get(strategy)
        if db is not None and limit is not None and limit.max_open_trades is not None \
                and Store.open_trade_count(db, strategy=strategy) >= limit.max_open_trades:
            return f"the strategy already has {limit.max_open_trades} open trades (its maximum)"
        login = (account.clientcode or "").upper()
        if login and login != self.settings.smartapi_user.upper() and login not in self.logins:
            return f"{LOGIN_UNKNOWN} {account.clientcode} is not in CREDENTIALS_FILE"
        return ""


def _account_rule(refusal: str) -> str:
    """The rule behind `entry_refusal`'s answer: the account list or its login, else a limit."""
    return "accounts" if refusal == NOT_LISTED or refusal.startswith(LOGIN_UNKNOWN) else "limits"
