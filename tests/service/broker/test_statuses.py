"""One order-status type: SmartAPI's states and tickguard's own, with the terminal and live sets."""
from __future__ import annotations

import pytest

from service.broker import LIVE_STATUSES, TERMINAL_STATUSES, OrderStatus
from service.broker.smartapi.rows import order_from_row


def test_every_status_is_either_terminal_or_live():
    assert TERMINAL_STATUSES | LIVE_STATUSES == set(OrderStatus) and not TERMINAL_STATUSES & LIVE_STATUSES
    assert {OrderStatus.IN_DOUBT, OrderStatus.UNRECOGNISED, OrderStatus.SENDING, OrderStatus.SENT} <= LIVE_STATUSES
    assert {OrderStatus.FAILED, OrderStatus.EXPIRED, OrderStatus.AMO_CANCELLED} <= TERMINAL_STATUSES


@pytest.mark.parametrize("text, status", [
    ("complete", OrderStatus.COMPLETE), (" Open ", OrderStatus.OPEN), ("trigger pending", OrderStatus.TRIGGER_PENDING),
    ("partially filled", OrderStatus.UNRECOGNISED), ("", OrderStatus.UNRECOGNISED), (None, OrderStatus.UNRECOGNISED),
    # tickguard's own words are never read from the wire
    ("in doubt", OrderStatus.UNRECOGNISED), ("failed", OrderStatus.UNRECOGNISED), ("sent", OrderStatus.UNRECOGNISED),
])
def test_a_status_text_is_a_broker_state_or_unrecognised(text, status):
    assert OrderStatus.parse(text) is status


def test_an_order_row_with_an_unreadable_status_is_live_not_finished(caplog):
    order = order_from_row({"orderid": "1", "orderstatus": "frozen by exchange", "quantity": "5", "transactiontype": "SELL"})
    assert order.status is OrderStatus.UNRECOGNISED and not order.terminal
    assert "order status not recognised" in caplog.text
