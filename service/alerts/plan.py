"""An alert's plan: the alert with its instrument, accounts and stop rules resolved before anything is
stored, and the per-account decision and trade row it leads to (trading-semantics §1-§4)."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from service.alerts.parse import Alert, AlertInvalid
from service.alerts.policy import Decision, Policy, decide, decide_contract, forbid_short
from service.alerts.prices import UNCHECKED, PriceCheck
from service.trades import Basis, TradeRecord, TradeSpec
from streams import Instrument, RuleError, Rules, Side, SizedFor, levels
from streams import Trade as EngineTrade

__all__ = ["ID_DEDUP_S", "Plan", "check_rules", "decide_for", "names_contract", "new_trade"]

ID_DEDUP_S = 24 * 3600  # an alert with its own id is a duplicate of that id for a day


@dataclass
class Plan:
    alert: Alert
    key: str
    dedup_until_ms: int
    stored_body: dict[str, Any]
    symbol: Any
    rules: dict[str, tuple[dict[str, Any], str]]  # account id -> (the trade's rules, where the stop came from)
    underlying: Any = None  # options: the underlying's symbol (spot or index)
    accounts: list[Any] = field(default_factory=list)  # the accounts an entry may trade on
    entry_refusal: str = ""  # why no entry may be taken (the account list is stale), or ""
    contract_named: bool = False  # an option alert naming its contract (not picked from an underlying)
    strategy: Any = None  # the strategy's settings (STRATEGIES_FILE), where it has any
    price: PriceCheck = UNCHECKED  # the alert's price against the live price (an entry is refused when off)


def check_rules(alert: Alert, rules: dict[str, Any], symbol: Any, fund: int, leverage: Decimal = Decimal(1)) -> None:
    """Refuse at alert time a stop ≤ 0 or a distance ≥ entry, judged at the alert's price (a `sized`
    rule by the quantity the fund would buy there, q* = fund × leverage ÷ price)."""
    try:
        engine_rules = msgspec.convert(rules, Rules, dec_hook=lambda t, v: Decimal(str(v)))
    except msgspec.ValidationError as exc:
        raise AlertInvalid([{"field": "stoploss", "reason": str(exc)}]) from None
    if alert.signal.value == "exit" or alert.position_size == 0 or alert.signal.value == "buy" and alert.chartink_word:
        return  # closes only: no new trade, no stop to judge
    price = int(alert.price * 100)
    quantity = alert.quantity or max(1, fund // price)  # what sizing would give, to judge rupees/fund_pct
    if alert.lots and symbol.is_future:
        quantity = alert.lots * symbol.lotsize
    trade = EngineTrade(
        id=0, account="", strategy=alert.strategyname,
        instrument=Instrument(symbol.token, symbol.exchange, symbol.tick_size),
        side=Side.LONG if alert.signal.value == "buy" else Side.SHORT, quantity=quantity, entry=price,
        rules=engine_rules, fund=fund,
        sized_for=SizedFor(Decimal(fund) * leverage, price) if alert.type == "equity" and not symbol.is_future else None,
    )
    try:
        levels(trade)
    except RuleError as exc:
        field_name = {"stop": "stoploss", "target": "target", "trail": "trail"}.get(exc.field.split(".")[0], exc.field)
        raise AlertInvalid([{"field": field_name, "reason": exc.reason}]) from None


def names_contract(symbolname: str) -> bool:
    """An option alert naming its contract (`NIFTY08DEC2625600CE`), not an underlying to pick one from."""
    name = symbolname.split(":", 1)[-1].upper()
    return name.endswith(("CE", "PE")) and any(ch.isdigit() for ch in name)


def decide_for(plan: Plan, account: str, open_trades: list[TradeRecord], policy: Policy, lot_size: int) -> Decision:
    """The decision for one account, from the strategy's open trades (every account's, oldest first)."""
    symbol = plan.symbol
    if plan.underlying is None:
        held = [t for t in open_trades if t.account == account and t.exchange == symbol.exchange and t.token == symbol.token]
        decision = decide(plan.alert, held, policy, lot_size if symbol.is_future else 1)
        if not symbol.is_derivative and plan.alert.product != "INTRADAY":
            return forbid_short(decision, f"a cash equity is short only INTRADAY, not {plan.alert.product}", "product")
        return decision
    if plan.contract_named:  # that contract only, whatever else of the underlying is held
        held = [t for t in open_trades if t.account == account and t.exchange == symbol.exchange and t.token == symbol.token]
        return decide_contract(plan.alert, held, policy, lot_size)
    # Options are only ever bought: a call is long the underlying, a put short. Decide on that view.
    view = [msgspec.structs.replace(t, side="LONG" if t.spec.right == "CE" else "SHORT") for t in open_trades
            if t.account == account and t.spec.underlying == plan.underlying.name]
    return decide(plan.alert, view, policy, lot_size)


def new_trade(plan: Plan, account: Any, side: str, now_ms: int, alert_id: int) -> TradeRecord:
    symbol = plan.symbol
    rules, source = plan.rules[account.account_id]
    fields: dict[str, Any] = {}
    if symbol.is_future:  # sized in whole lots from the broker's margin for one lot (service/execution/entries.py)
        fields.update(instrumenttype=symbol.instrumenttype, freeze_qty=symbol.freeze_qty)
    alert_price: int | None = int(plan.alert.price * 100)
    if plan.underlying is not None:
        u = plan.underlying
        fields.update(right=symbol.option_type, underlying=u.name, underlying_price=alert_price,
                      freeze_qty=symbol.freeze_qty)
        if plan.alert.stop_basis == "underlying":
            fields.update(basis=Basis(u.exchange, u.token, u.tick_size), basis_entry=alert_price,
                          basis_side="LONG" if symbol.option_type == "CE" else "SHORT")
        alert_price = None  # the alert priced the underlying, not the option
        side = "LONG"  # an option alert buys the call or the put; tickguard never writes options
    fields.update(_broker_stop_word(account, plan.strategy))
    return TradeRecord(
        id=0, alert_id=alert_id, account=account.account_id, strategy=plan.alert.strategyname, exchange=symbol.exchange,
        token=symbol.token, tradingsymbol=symbol.tradingsymbol, side=side, product=plan.alert.product,
        created_ms=now_ms, updated_ms=now_ms,
        spec=TradeSpec(rules=rules, rule_source=source, tick_size=symbol.tick_size, lot_size=symbol.lotsize,
                       alert_price=alert_price, fund=account.fund, login=account.clientcode or None, **fields),
    )


def _broker_stop_word(account: Any, strategy: Any) -> dict[str, Any]:
    """The broker-side backup stop's spec fields: the account's word wins, then the strategy's; with
    neither, the BROKER_STOP setting decides when the trade arms. The strategy's buffer comes along."""
    fields: dict[str, Any] = {}
    if getattr(account, "broker_stop", None) is not None:
        fields.update(broker_stop=account.broker_stop, broker_stop_from="account")
    elif strategy is not None and strategy.broker_stop is not None:
        fields.update(broker_stop=strategy.broker_stop, broker_stop_from="strategy")
    if strategy is not None and strategy.broker_stop_buffer:
        fields["broker_stop_buffer"] = strategy.broker_stop_buffer.strip()
    return fields
