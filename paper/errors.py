"""The paper exchange's errors: every refusal carries the broker's error code and a precise message.

    PaperError (errorcode, message, field)
    ├── OrderError       a refused placeOrder / modifyOrder / cancelOrder
    │   └── OrderNotFound   (orderid) AB1013
    ├── GttError         a refused GTT request (createRule … ruleList), AB9000–AB9018 (`paper.gtt`)
    │                    (either, AB7001: an order route from another address, `paper.static_ips`)
    └── …                the HTTP layer's own (auth) errors

The HTTP layer answers every `PaperError` with the documented failure envelope
`{"status": false, "message": message, "errorcode": errorcode, "data": null}`.
"""
from __future__ import annotations

__all__ = ["PaperError", "OrderError", "OrderNotFound", "GttError"]


class PaperError(Exception):
    """Base of every error the paper exchange raises on purpose."""

    def __init__(self, errorcode: str, message: str, field: str | None = None) -> None:
        self.errorcode = errorcode
        self.message = message
        self.field = field  # the request field at fault, when there is one
        super().__init__(f"{errorcode}: {message}" + (f" [{field}]" if field else ""))


class OrderError(PaperError):
    """An order request refused synchronously: the order does not exist afterwards (or is unchanged)."""


class OrderNotFound(OrderError):
    def __init__(self, orderid: str) -> None:
        self.orderid = orderid
        super().__init__("AB1013", "Order not found", "orderid")


class GttError(PaperError):
    """A GTT request refused synchronously: no rule is created and the rule named is unchanged."""
