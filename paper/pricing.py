"""The derivative pricing model: cost-of-carry futures and Black-Scholes options, in float paise."""
from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, timezone

__all__ = [
    "IST",
    "RISK_FREE_RATE",
    "call_put_price",
    "expiry_epoch",
    "future_price",
    "implied_vol",
    "years_to_expiry",
]

IST = timezone(timedelta(hours=5, minutes=30), "IST")
RISK_FREE_RATE = 0.065
SECONDS_PER_YEAR = 365 * 86400
MIN_TIME_TO_EXPIRY_S = 60  # at and after the close on expiry day the model prices intrinsic value plus a sliver
EXPIRY_TIME = time(15, 30)
_INDEX_VOLS = {"NIFTY": 0.13, "BANKNIFTY": 0.15, "FINNIFTY": 0.14, "SENSEX": 0.13}
_STOCK_VOL = 0.25
_SQRT2 = math.sqrt(2.0)


def implied_vol(underlying_name: str) -> float:
    """The flat implied volatility the paper exchange prices an underlying's options with."""
    return _INDEX_VOLS.get(underlying_name.upper(), _STOCK_VOL)


def expiry_epoch(expiry: date) -> float:
    """Epoch seconds of 15:30 IST on the expiry date, when contracts stop trading."""
    return datetime.combine(expiry, EXPIRY_TIME, IST).timestamp()


def years_to_expiry(expiry_at: float, now: float) -> float:
    return max(expiry_at - now, MIN_TIME_TO_EXPIRY_S) / SECONDS_PER_YEAR


def future_price(spot: float, years: float, rate: float = RISK_FREE_RATE) -> float:
    return spot * math.exp(rate * years)


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def call_put_price(
    spot: float, strike: float, years: float, vol: float, option_type: str, rate: float = RISK_FREE_RATE
) -> float:
    """Black-Scholes premium in the units of `spot`, never below intrinsic value."""
    if spot <= 0 or strike <= 0:
        raise ValueError(f"spot {spot} and strike {strike} must be positive")
    if option_type not in ("CE", "PE"):
        raise ValueError(f"option type {option_type!r} is not CE or PE")
    sd = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * years) / sd
    d2 = d1 - sd
    discounted = strike * math.exp(-rate * years)
    if option_type == "CE":
        premium = spot * _norm_cdf(d1) - discounted * _norm_cdf(d2)
        intrinsic = spot - strike
    else:
        premium = discounted * _norm_cdf(-d2) - spot * _norm_cdf(-d1)
        intrinsic = strike - spot
    # European puts deep in the money price below intrinsic; Indian stock options and traders' stops expect it not to.
    return max(premium, intrinsic, 0.0)
