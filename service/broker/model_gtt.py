"""GTT rules for `ModelBroker`: SmartAPI's good-till-triggered stops, in memory.

A rule waits (NEW; ACTIVE once modified) for the price to reach its trigger from the side the price
stood on when the rule was created or last modified: a SELL rule below the price is a stop, above it a
target. With no price known a rule is taken for a stop (SELL: ltp ≤ trigger, BUY: ltp ≥ trigger); a
rule whose trigger the price already stands on fires at once. Firing is the broker's part (it places
the rule's LIMIT order); the book then marks the rule SENTTOEXCHANGE with that order's id. A rule's
`days` are kept but never run out: the model has no calendar.

Each GTT call meets the next `GttFault` armed with `arm()`, else none:
    ok            the call does what it says
    refused       `OrderRefused`, nothing changed
    rate_limited  `RateLimited`, nothing changed
    loses         modify/cancel only: the rule fires first (its order is placed and matched) and the
                  call is refused as for a rule already sent; the order's updates come `delay_s` after
                  the refusal. A create has no race to lose: it meets `loses` as `ok`.

GTT refusals carry AB9000, one code of SmartAPI's GTT family (AB9000–AB9018, whose individual
meanings are not recorded).
"""
from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal

import msgspec

from service.broker.errors import OrderRefused, RateLimited
from service.broker.types import GttRequest, GttRule, GttStatus, OrderSide

__all__ = ["GttFault", "ModelGttBook"]

GTT_REFUSED = "AB9000"


@dataclass(frozen=True)
class GttFault:
    call: Literal["ok", "refused", "rate_limited", "loses"] = "ok"
    delay_s: float = 0.05  # loses: how long after the refusal the fired order's updates arrive
    text: str = "rejected by the model broker"


@dataclass
class _Rule:
    rule: GttRule
    falling: bool  # fires when the price falls to the trigger (else when it rises to it)

    def reached(self, ltp: int) -> bool:
        trigger = self.rule.trigger_price
        return ltp <= trigger if self.falling else ltp >= trigger


class ModelGttBook:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.journal: list[tuple[float, GttRule]] = []  # every state of every rule, in order
        self.calls: list[tuple[float, str, str, GttFault]] = []  # (when, route, rule id or "", fault met)
        self._armed: deque[GttFault] = deque()
        self._rules: dict[str, _Rule] = {}
        self._ids = itertools.count(1)

    def arm(self, *faults: GttFault) -> None:
        """The next GTT calls meet these faults, one each, in order."""
        self._armed.extend(faults)

    def meet(self, route: str, rule_id: str = "") -> GttFault:
        """The fault this call meets, raising the refusals it stands for."""
        fault = self._armed.popleft() if self._armed else GttFault()
        self.calls.append((self.clock(), route, rule_id, fault))
        if fault.call == "refused":
            raise OrderRefused(fault.text, GTT_REFUSED, route=route)
        if fault.call == "rate_limited":
            raise RateLimited("Access denied because of exceeding access rate", route=route)
        return fault

    # Changes ---------------------------------------------------------------------------------------
    def create(self, request: GttRequest, ltp: int | None) -> GttRule:
        _check(request, "createRule")
        rule = GttRule(rule_id=str(1000 + next(self._ids)), exchange=request.exchange,
                       tradingsymbol=request.tradingsymbol, token=request.token, side=request.side,
                       product=request.product, quantity=request.quantity, price=request.price,
                       trigger_price=request.trigger_price, status=GttStatus.NEW)
        self._rules[rule.rule_id] = _Rule(rule, _falling(request, ltp))
        self._record(rule)
        return rule

    def modify(self, rule_id: str, request: GttRequest, ltp: int | None) -> GttRule:
        entry = self.waiting(rule_id, request.exchange, request.token, "modifyRule")
        _check(request, "modifyRule")
        if (request.side, request.product) != (entry.rule.side, entry.rule.product):
            raise OrderRefused("a rule's side and product cannot be modified", GTT_REFUSED, route="modifyRule")
        entry.rule = msgspec.structs.replace(entry.rule, quantity=request.quantity, price=request.price,
                                             trigger_price=request.trigger_price, status=GttStatus.ACTIVE)
        entry.falling = _falling(request, ltp)
        self._record(entry.rule)
        return entry.rule

    def cancel(self, rule_id: str, exchange: str, token: str) -> GttRule:
        entry = self.waiting(rule_id, exchange, token, "cancelRule")
        entry.rule = msgspec.structs.replace(entry.rule, status=GttStatus.CANCELLED)
        self._record(entry.rule)
        return entry.rule

    def sent(self, rule_id: str, order_id: str) -> GttRule:
        """The rule fired and its order `order_id` was placed."""
        entry = self._rules[rule_id]
        entry.rule = msgspec.structs.replace(entry.rule, status=GttStatus.SENT_TO_EXCHANGE, order_id=order_id)
        self._record(entry.rule)
        return entry.rule

    def waiting(self, rule_id: str, exchange: str, token: str, route: str) -> _Rule:
        """The rule, still waiting for its trigger; refused (as the broker would) otherwise."""
        entry = self._rules.get(rule_id)
        if entry is None or (entry.rule.exchange, entry.rule.token) != (exchange, token):
            raise OrderRefused(f"GTT rule {rule_id} not found on {exchange}:{token}", GTT_REFUSED, route=route)
        if not entry.rule.status.waiting:
            raise OrderRefused(f"GTT rule {rule_id} is {entry.rule.status}", GTT_REFUSED, route=route)
        return entry

    def _record(self, rule: GttRule) -> None:
        self.journal.append((self.clock(), rule))

    # Reading ---------------------------------------------------------------------------------------
    def rule(self, rule_id: str) -> GttRule | None:
        entry = self._rules.get(rule_id)
        return None if entry is None else entry.rule

    def rules(self, statuses: Collection[GttStatus] | None = None) -> list[GttRule]:
        """Every rule in one of `statuses` (all of them for None), oldest first."""
        return [e.rule for e in self._rules.values() if statuses is None or e.rule.status in statuses]

    def due(self, exchange: str, token: str, ltp: int) -> list[GttRule]:
        """The waiting rules on this instrument whose trigger `ltp` reached (not yet marked sent)."""
        return [e.rule for e in self._rules.values()
                if e.rule.status.waiting and (e.rule.exchange, e.rule.token) == (exchange, token) and e.reached(ltp)]


def _check(request: GttRequest, route: str) -> None:
    for name, value in (("quantity", request.quantity), ("price", request.price), ("trigger price", request.trigger_price)):
        if value <= 0:
            raise OrderRefused(f"Invalid {name}: {value}", GTT_REFUSED, route=route, field=name.replace(" ", ""))


def _falling(request: GttRequest, ltp: int | None) -> bool:
    if ltp is None or ltp == request.trigger_price:
        return request.side is OrderSide.SELL
    return ltp > request.trigger_price
