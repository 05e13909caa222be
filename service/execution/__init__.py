"""Execution: trades into broker orders, broker order events into trade events (trading-semantics §5).

`Trader` (trader.py) composes the parts; the modules, lowest first: config, journal, positions,
sizing, orders, doubt, entries, chase, exits, trader. None imports one above it.
"""
from service.execution.config import ExecConfig
from service.execution.trader import Trader

__all__ = ["ExecConfig", "Trader"]
