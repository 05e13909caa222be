"""The paper exchange's own copy of the charges rates (`charges_rates.json`) and one order charged by them."""
from __future__ import annotations

import copy
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

__all__ = ["ChargeRates", "RatesError"]

RATES_FILE = Path(__file__).with_name("charges_rates.json")


class RatesError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


class ChargeRates:
    """The rates this exchange charges by; `replace` merges a partial document over them."""

    def __init__(self, document: dict[str, Any] | None = None) -> None:
        self.shipped = json.loads(RATES_FILE.read_text())
        self.document = copy.deepcopy(document or self.shipped)

    def reset(self) -> None:
        self.document = copy.deepcopy(self.shipped)

    def replace(self, changes: dict[str, Any]) -> None:
        merged = copy.deepcopy(self.document)
        _merge(merged, changes)
        _check(merged)
        self.document = merged

    def charge(self, segment: str, exchange: str, side: str, value: Decimal) -> dict[str, Decimal]:
        """One order's charges in rupees, unrounded."""
        rates = self.document["segments"][segment][exchange]
        pct = Decimal("0.01")
        plan = self.document["brokerage"][segment]
        if "flat" in plan:
            brokerage = Decimal(plan["flat"])
        else:
            brokerage = min(Decimal(plan["percent"]) * pct * value, Decimal(plan["cap"]))
        stt_applies = rates["stt_on"] == "both" or rates["stt_on"] == side.lower()
        stt = Decimal(rates["stt"]) * pct * value if stt_applies else Decimal(0)
        exchange_txn = Decimal(rates["exchange_txn"]) * pct * value
        sebi = Decimal(self.document["sebi_per_crore"]) * value / Decimal(10**7)
        stamp = Decimal(rates["stamp"]) * pct * value if side == "BUY" else Decimal(0)
        gst = Decimal(self.document["gst_percent"]) * pct * (brokerage + exchange_txn + sebi)
        return {"brokerage": brokerage, "stt": stt, "exchange_txn": exchange_txn, "sebi": sebi, "stamp": stamp,
                "gst": gst}


def _merge(into: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _check(document: dict[str, Any]) -> None:
    try:
        for segment in ("equity_intraday", "equity_delivery", "futures", "options"):
            for exchange in ("NSE", "BSE"):
                rates = document["segments"][segment][exchange]
                for name in ("stt", "exchange_txn", "stamp"):
                    if Decimal(rates[name]) < 0:
                        raise RatesError(f"segments.{segment}.{exchange}.{name}", "a rate cannot be negative")
                if rates["stt_on"] not in ("buy", "sell", "both"):
                    raise RatesError(f"segments.{segment}.{exchange}.stt_on", "buy, sell or both")
            plan = document["brokerage"][segment]
            Decimal(plan["flat"]) if "flat" in plan else (Decimal(plan["percent"]), Decimal(plan["cap"]))
        Decimal(document["sebi_per_crore"]), Decimal(document["gst_percent"])
    except (KeyError, TypeError, InvalidOperation) as missing:
        raise RatesError("charges", f"incomplete or unreadable rates: {missing}") from None
