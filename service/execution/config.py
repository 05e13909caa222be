"""What execution is told: one frozen value, read by every part of the package."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from service.execution.backstop_levels import BackupConfig

__all__ = ["ExecConfig"]


@dataclass(frozen=True)
class ExecConfig:
    exit_order_type: str = "LIMIT"  # LIMIT (protected, chased) | MARKET
    protection_pct: Decimal = Decimal("0.5")  # how far beyond the LTP an exit limit is priced
    chase_ms: int = 500  # re-price an unfilled exit this often
    exit_attempts: int = 3  # exit orders tried before the trade is UNPROTECTED
    retry_backoff_s: float = 0.2  # doubled after every rejected exit
    leverage: dict[str, Decimal] = field(default_factory=lambda: {"INTRADAY": Decimal(1), "DELIVERY": Decimal(1)})
    entry_ttl_s: float = 5.0  # an entry queued longer than this expires instead of trading late
    confirm_after_s: float = 1.0  # an order without news for this long is looked up at the broker
    doubt_settle_s: float = 5.0  # DOUBT_SETTLE_S: two order-book reads this far apart without it = never placed
    backup: BackupConfig = field(default_factory=BackupConfig)  # BROKER_STOP*: the broker-side backup stop
