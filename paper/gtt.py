"""GTT rules (SmartAPI's gtt/v1): a stop kept by the broker across days, which places a LIMIT order
when the price crosses its trigger.

Life of a rule (statuses as ruleList names them):

    createRule ──> NEW ──modifyRule──> ACTIVE ──modifyRule──> ACTIVE
                    │                    │
                    ├── trigger ─────────┴──> SENTTOEXCHANGE   (its LIMIT order placed: `orderid`)
                    ├── cancelRule ──────────> CANCELLED
                    └── expirydate passed ───> CANCELLED        (paper's choice: no EXPIRED status)

Triggering, on every quote of the rule's instrument (after the fill engine has matched its orders to
that quote): a waiting rule triggers when SELL: ltp ≤ trigger, BUY: ltp ≥ trigger — a stop. It then
places, through the fill engine, a NORMAL LIMIT order at the rule's price for its qty and product
(DAY, disclosed qty as the rule's), with `parentorderid` = the rule id and no `ordertag`; the order
is in the order book, fills, moves positions and holdings and is pushed on the order-update socket
like any other. The RMS may still reject that order (funds, circuit): the rule is SENTTOEXCHANGE
either way, and the order tells what became of it.

The paper exchange's choices where SmartAPI publishes none (documented in docs/paper-gtt.md):
  - A SELL rule's trigger must be below the ltp and a BUY rule's above it when the rule is created or
    modified (a rule that would trigger at once is refused, AB9011). Its limit price may sit on either
    side of its trigger. Prices and triggers are positive multiples of the tick; no circuit check
    (the band changes daily and the rule lives for days): the order it places meets the RMS then.
  - A rule lives `timeperiod` days (1 to 365, default 365) from its creation or last modification.
  - Absent fields of a modifyRule keep the rule's values; modifyRule and cancelRule must name the
    rule's own exchange and symboltoken.
  - ruleList answers newest rule first; an empty page is `[]`. Rule ids are whole numbers from 1000001.
  - Rule rows carry `id` and, once triggered, `orderid` (the order placed); otherwise the fields of
    SmartAPI's documented ruleDetails sample, dates as ISO-8601 UTC.
  - At most `MAX_WAITING_RULES` waiting rules per client.

Error codes (SmartAPI lists AB9000–AB9018 without meanings; these are the paper exchange's):
    AB9000 a field missing or unreadable (id, symboltoken, qty, …)
    AB9001 rule not found (unknown id, or another client's)
    AB9002 exchange not NSE or BSE          AB9003 symbol not found (or an index)
    AB9004 producttype not DELIVERY/MARGIN  AB9005 transactiontype not BUY/SELL
    AB9006 invalid price (≤ 0, off tick)    AB9007 invalid trigger price (≤ 0, off tick)
    AB9008 invalid qty (< 1 lot, not lots)  AB9009 invalid disclosedqty (< 0 or > qty)
    AB9010 timeperiod not 1..365            AB9011 trigger on the wrong side of the ltp
    AB9012 no market price for the instrument
    AB9013 rule not modifiable in its state AB9014 rule not cancellable in its state
    AB9015 exchange/symboltoken not the rule's
    AB9016 ruleList status filter invalid   AB9017 ruleList page/count invalid
    AB9018 too many waiting rules
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from paper import positions as pos
from paper.errors import GttError, PaperError
from paper.gtt_params import (
    NO_PRICE,
    NOT_CANCELLABLE,
    NOT_FOUND,
    NOT_MODIFIABLE,
    TOO_MANY,
    TRIGGER_SIDE,
    WAITING,
    RuleTerms,
    parse_create,
    parse_instrument_check,
    parse_list,
    parse_rule_id,
    parse_terms,
)
from paper.instruments import Instrument, Universe
from paper.orders import OrderEngine
from paper.quotes import PriceSource, Quote, quote_or_none

__all__ = ["GttBook", "Rule", "rule_row", "rule_from_row", "FIRST_RULE_ID", "MAX_WAITING_RULES"]

FIRST_RULE_ID = 1_000_001
MAX_WAITING_RULES = 500
DAY_S = 86_400
RuleListener = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Rule:
    """One GTT rule; times are whole epoch seconds."""

    id: int
    clientcode: str
    exchange: str
    symboltoken: str
    tradingsymbol: str
    producttype: str
    transactiontype: str
    terms: RuleTerms
    status: str
    created: int
    updated: int
    expires: int
    orderid: str = ""

    def crossed(self, ltp: int) -> bool:
        return ltp <= self.terms.triggerprice if self.transactiontype == "SELL" else ltp >= self.terms.triggerprice


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


def rule_row(rule: Rule) -> dict[str, Any]:
    """The rule as ruleDetails and ruleList show it: prices in rupees and quantities as numbers."""
    terms = rule.terms
    return {
        "id": rule.id, "status": rule.status, "createddate": _iso(rule.created), "updateddate": _iso(rule.updated),
        "expirydate": _iso(rule.expires), "clientid": rule.clientcode, "tradingsymbol": rule.tradingsymbol,
        "symboltoken": rule.symboltoken, "exchange": rule.exchange, "producttype": rule.producttype,
        "transactiontype": rule.transactiontype, "price": pos.rupees(terms.price), "qty": terms.qty,
        "triggerprice": pos.rupees(terms.triggerprice), "disclosedqty": terms.disclosedqty,
        "timeperiod": terms.timeperiod, "orderid": rule.orderid,
    }


def rule_from_row(clientcode: str, row: Mapping[str, Any]) -> Rule:
    """A rule back from its stored row."""
    terms = RuleTerms(pos.paise_of(row["price"]), int(row["qty"]), pos.paise_of(row["triggerprice"]),
                      int(row["disclosedqty"]), int(row["timeperiod"]))
    return Rule(int(row["id"]), clientcode, str(row["exchange"]), str(row["symboltoken"]), str(row["tradingsymbol"]),
                str(row["producttype"]), str(row["transactiontype"]), terms, str(row["status"]),
                _epoch(row["createddate"]), _epoch(row["updateddate"]), _epoch(row["expirydate"]),
                str(row.get("orderid") or ""))


class GttBook:
    """Every client's GTT rules, and their triggering into the fill engine's orders."""

    def __init__(self, universe: Universe, prices: PriceSource, engine: OrderEngine, *, clock: Callable[[], float],
                 max_waiting: int = MAX_WAITING_RULES) -> None:
        self.universe = universe
        self.prices = prices
        self.engine = engine
        self.clock = clock
        self.max_waiting = max_waiting
        self.placement_error: PaperError | None = None  # the last trigger whose order the engine refused outright
        self.listener_error: BaseException | None = None
        self._rules: dict[int, Rule] = {}
        self._waiting: dict[tuple[str, str], dict[int, None]] = {}  # (exchange, token) -> waiting rule ids
        self._sequence = 0
        self._listeners: list[RuleListener] = []

    def add_listener(self, fn: RuleListener) -> None:
        """`fn(clientcode, row)` after every change of a rule (the exchange's store keeps the rows)."""
        self._listeners.append(fn)

    # Requests --------------------------------------------------------------------------------------------
    def create(self, clientcode: str, body: Mapping[str, Any]) -> Rule:
        instrument, side, product, terms = parse_create(body, self.universe)
        waiting = sum(1 for r in self._rules.values() if r.clientcode == clientcode and r.status in WAITING)
        if waiting >= self.max_waiting:
            raise GttError(TOO_MANY, f"Too many rules: {waiting} are waiting (at most {self.max_waiting})")
        self._check_trigger(instrument, side, terms.triggerprice)
        now = int(self.clock())
        self._sequence += 1
        rule = Rule(FIRST_RULE_ID - 1 + self._sequence, clientcode, instrument.exchange, instrument.token,
                    instrument.symbol, product, side, terms, "NEW", now, now, now + terms.timeperiod * DAY_S)
        return self._store(rule)

    def modify(self, clientcode: str, body: Mapping[str, Any]) -> Rule:
        rule = self._own(clientcode, body)
        parse_instrument_check(body, rule.exchange, rule.symboltoken)
        if rule.status not in WAITING:
            raise GttError(NOT_MODIFIABLE, f"Rule {rule.id} is {rule.status} and can no longer be modified", "id")
        instrument = self._instrument(rule)
        terms = parse_terms(body, instrument, rule.terms)
        self._check_trigger(instrument, rule.transactiontype, terms.triggerprice)
        now = int(self.clock())
        return self._store(replace(rule, terms=terms, status="ACTIVE", updated=now,
                                   expires=now + terms.timeperiod * DAY_S))

    def cancel(self, clientcode: str, body: Mapping[str, Any]) -> Rule:
        rule = self._own(clientcode, body)
        parse_instrument_check(body, rule.exchange, rule.symboltoken)
        if rule.status not in WAITING:
            raise GttError(NOT_CANCELLABLE, f"Rule {rule.id} is {rule.status} and can no longer be cancelled", "id")
        return self._store(replace(rule, status="CANCELLED", updated=int(self.clock())))

    def details(self, clientcode: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return rule_row(self._own(clientcode, body))

    def listing(self, clientcode: str, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        statuses, page, count = parse_list(body)
        rules = [self._current(r) for r in self._rules.values() if r.clientcode == clientcode]
        chosen = sorted((r for r in rules if r.status in statuses), key=lambda r: r.id, reverse=True)
        return [rule_row(r) for r in chosen[(page - 1) * count:page * count]]

    # Triggering --------------------------------------------------------------------------------------------
    def on_quotes(self, quotes: Iterable[Quote]) -> None:
        if not self._waiting:
            return
        for quote in quotes:
            ids = self._waiting.get((quote.exchange, quote.token))
            if not ids:
                continue
            for rule_id in list(ids):
                rule = self._current(self._rules[rule_id])
                if rule.status in WAITING and rule.crossed(quote.ltp):
                    self._trigger(rule)

    def _trigger(self, rule: Rule) -> None:
        self._unindex(rule)  # out of the waiting rules before the order can move anything
        params = {
            "variety": "NORMAL", "tradingsymbol": rule.tradingsymbol, "symboltoken": rule.symboltoken,
            "exchange": rule.exchange, "transactiontype": rule.transactiontype, "ordertype": "LIMIT",
            "producttype": rule.producttype, "duration": "DAY", "price": pos.paise_text(rule.terms.price),
            "quantity": str(rule.terms.qty), "disclosedquantity": str(rule.terms.disclosedqty),
        }
        orderid = ""
        try:
            orderid = self.engine.place(rule.clientcode, params, parent=str(rule.id)).orderid
        except PaperError as exc:  # the rule was checked when made; kept for the control API's eyes
            self.placement_error = exc
        self._store(replace(rule, status="SENTTOEXCHANGE", updated=int(self.clock()), orderid=orderid))

    # Persistence ----------------------------------------------------------------------------------------------
    def export(self) -> tuple[tuple[str, dict[str, Any]], ...]:
        """(clientcode, row) of every rule, oldest first: what `restore_rows` takes back."""
        return tuple((r.clientcode, rule_row(r)) for r in sorted(self._rules.values(), key=lambda r: r.id))

    def restore_rows(self, rows: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        self._rules, self._waiting = {}, {}
        for clientcode, row in rows:
            rule = rule_from_row(clientcode, row)
            self._rules[rule.id] = rule
            self._index(rule)
        self._sequence = max((rule_id - FIRST_RULE_ID + 1 for rule_id in self._rules), default=0)

    # Plumbing ---------------------------------------------------------------------------------------------
    def _check_trigger(self, instrument: Instrument, side: str, trigger: int) -> None:
        quote = quote_or_none(self.prices, instrument.exchange, instrument.token)
        if quote is None:
            raise GttError(NO_PRICE, f"No market price for {instrument.symbol}", "symboltoken")
        if (trigger >= quote.ltp) if side == "SELL" else (trigger <= quote.ltp):
            where = "below" if side == "SELL" else "above"
            raise GttError(TRIGGER_SIDE, f"Invalid triggerprice {pos.paise_text(trigger)}: a {side} rule's trigger "
                           f"must be {where} the ltp {pos.paise_text(quote.ltp)}", "triggerprice")

    def _own(self, clientcode: str, body: Mapping[str, Any]) -> Rule:
        rule_id = parse_rule_id(body)
        rule = self._rules.get(rule_id)
        if rule is None or rule.clientcode != clientcode:
            raise GttError(NOT_FOUND, f"Rule {rule_id} not found", "id")
        return self._current(rule)

    def _current(self, rule: Rule) -> Rule:
        """The rule as of now: a waiting rule past its expiry date is cancelled on first sight."""
        if rule.status in WAITING and self.clock() >= rule.expires:
            return self._store(replace(rule, status="CANCELLED", updated=rule.expires))
        return rule

    def _store(self, rule: Rule) -> Rule:
        self._rules[rule.id] = rule
        self._index(rule)
        row = rule_row(rule)
        for listener in list(self._listeners):
            try:
                listener(rule.clientcode, row)
            except Exception as exc:  # a failing store must not leave a trigger half done
                self.listener_error = exc
        return rule

    def _index(self, rule: Rule) -> None:
        if rule.status in WAITING:
            self._waiting.setdefault((rule.exchange, rule.symboltoken), {})[rule.id] = None
        else:
            self._unindex(rule)

    def _unindex(self, rule: Rule) -> None:
        ids = self._waiting.get((rule.exchange, rule.symboltoken))
        if ids is not None:
            ids.pop(rule.id, None)
            if not ids:
                del self._waiting[(rule.exchange, rule.symboltoken)]

    def _instrument(self, rule: Rule) -> Instrument:
        instrument = self.universe.by_token(rule.exchange, rule.symboltoken)
        assert instrument is not None, f"{rule.exchange}:{rule.symboltoken} left the universe"
        return instrument
