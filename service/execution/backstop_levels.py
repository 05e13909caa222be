"""Where a broker-side backup stop sits, and which trades get one (pure: no I/O).

tickguard's own stop fires first; the broker's stop sits behind it by a buffer (`BROKER_STOP_BUFFER`:
a percent of the stop price, "0.2%", or rupees, "1.50"; never less than two ticks), so in normal
markets the software stop wins and cancels the broker's before it can trigger. The broker's order is
a stop-limit: its limit sits the exit protection distance beyond the trigger (`EXIT_PROTECTION_PCT`
of the trigger, at least one tick), so a triggered stop fills through a fast market without being a
market order — exchanges refuse stop-market orders on options. Every level is on the instrument's
tick, rounded away from the position (a later trigger, a deeper limit), and inside the day's circuit
band when it is known.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from service.trades import TradeRecord, TradeState

__all__ = ["BackupConfig", "Buffer", "GTT_PRODUCTS", "STOP_PRODUCTS", "backup_for", "broker_levels", "moved_enough",
           "wanted"]

STOP_PRODUCTS = frozenset({"INTRADAY", "CARRYFORWARD", "MARGIN"})  # a stop-limit order for the session
GTT_PRODUCTS = frozenset({"DELIVERY"})  # a GTT rule, which lives across days
_BUFFER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


@dataclass(frozen=True)
class Buffer:
    """How far behind tickguard's stop the broker's trigger sits: `pct` percent of the stop, or `paise`."""

    pct: Decimal | None = Decimal("0.2")
    paise: int | None = None

    @classmethod
    def parse(cls, text: str) -> Buffer:
        """"0.2%" (percent of the stop price) or "1.50" (rupees); ValueError for anything else."""
        match = _BUFFER.match(text or "")
        if match is None:
            raise ValueError(f"expected a percent like 0.2% or rupees like 1.50, got {text!r}")
        value = Decimal(match[1])
        if match[2]:
            if value >= 20:
                raise ValueError(f"a buffer of {value}% is not a backup stop: keep it under 20%")
            return cls(pct=value)
        return cls(pct=None, paise=int(value * 100))

    def distance(self, stop: int, tick: int) -> int:
        """Paise behind the stop, on the tick, at least two ticks."""
        raw = Decimal(stop) * self.pct / 100 if self.pct is not None else Decimal(self.paise or 0)
        ticks = int((raw / tick).to_integral_value(ROUND_CEILING))
        return max(ticks, 2) * tick

    def __str__(self) -> str:
        return f"{self.pct}%" if self.pct is not None else f"₹{Decimal(self.paise or 0) / 100:.2f}"


@dataclass(frozen=True)
class BackupConfig:
    """The BROKER_STOP settings (service/settings.py)."""

    mode: str = "off"  # off | backup
    buffer: Buffer = Buffer()
    step_pct: Decimal = Decimal("0.25")  # a trailed stop moves the broker's only this far at least…
    min_s: float = 5.0  # …and at most this often per trade
    protection_pct: Decimal = Decimal("0.5")  # the limit's distance beyond the trigger (EXIT_PROTECTION_PCT)


def backup_for(trade: TradeRecord, config: BackupConfig) -> tuple[Buffer | None, str]:
    """(the buffer, "") for a trade that gets a broker stop, or (None, why it gets none)."""
    spec = trade.spec
    word = spec.broker_stop
    if word is False:
        setting = "brokerstop" if spec.broker_stop_from == "account" else "broker_stop"
        return None, f"off for this {spec.broker_stop_from or 'trade'} (its {setting} setting)"
    if word is not True and config.mode != "backup":
        return None, "BROKER_STOP is off"
    if spec.basis:
        return None, "the stop is watched on the underlying: no broker order can follow it"
    if trade.stop is None:
        return None, "the trade has no stop"
    if trade.product not in STOP_PRODUCTS | GTT_PRODUCTS:
        return None, f"no broker stop for product {trade.product}"
    if isinstance(spec.broker_stop_buffer, str):
        try:
            return Buffer.parse(spec.broker_stop_buffer), ""
        except ValueError:
            pass  # checked when the strategies were loaded: the setting's buffer serves
    return config.buffer, ""


def wanted(trade: TradeRecord) -> bool:
    """The trade is in a state whose position a broker stop should cover."""
    return trade.state is TradeState.OPEN and trade.open_quantity > 0


def broker_levels(stop: int, long: bool, tick: int, buffer: Buffer, protection_pct: Decimal,
                  band: tuple[int, int] | None = None) -> tuple[int, int]:
    """(trigger, limit) in paise for a position's broker stop behind tickguard's `stop`."""
    tick = max(1, tick)
    behind = buffer.distance(stop, tick)
    if long:  # a SELL stop: trigger below the stop, limit below the trigger
        trigger = max(tick, (stop - behind) // tick * tick)
    else:  # a BUY stop: above
        trigger = -(-(stop + behind) // tick) * tick
    room = int((Decimal(trigger) * protection_pct / 100 / tick).to_integral_value(ROUND_CEILING))
    room = max(room, 1) * tick
    limit = max(tick, trigger - room) if long else trigger + room
    if band is not None:
        low, high = band
        trigger = min(max(trigger, low), high)
        limit = min(max(limit, low), high)
    return trigger, limit


def moved_enough(placed: int, wanted_trigger: int, long: bool, step_pct: Decimal) -> bool:
    """A trailed trigger worth a modification: tighter than the placed one by at least `step_pct`
    percent. A looser one never is — the broker's stop only ratchets, like tickguard's."""
    gain = wanted_trigger - placed if long else placed - wanted_trigger
    return gain > 0 and Decimal(gain) * 100 >= Decimal(placed) * step_pct
