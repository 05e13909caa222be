"""The static-IP rule as the paper exchange enforces it, and where each order request came from.

Since 2026-04-01 (SEBI's retail-algo framework) every API order of a client must come from a static
IP registered for that client, and one IP serves one client. With `PaperConfig.static_ips` set
(client code -> address; tickguard's PAPER_STATIC_IPS) the paper exchange refuses an order route —
placeOrder, modifyOrder, cancelOrder, and the GTT createRule, modifyRule and cancelRule — whose TCP
peer is not the client's registered address, and also a client with no address registered. Unset
(the default), nothing is refused. Reads (books, quotes, positions) and logins are never refused.

The broker's own wording for such a refusal is not recorded, so the reply is the paper exchange's
choice: the failure envelope with error code `AB7001` (a code no documented SmartAPI error uses) and
the message

    Order refused by the static-IP rule: client P0002 must send orders from 127.0.0.3, this one came from 127.0.0.2
    Order refused by the static-IP rule: no static IP is registered for client P0003 (this one came from 127.0.0.2)

Every order request, accepted or refused, is remembered with its peer address (the newest `keep`),
readable with `GET /paper/v1/sources` (control API, `paper.app`) (`{"orders": [{"route", "clientcode", "peer", "ordertag",
"refused"}]}`, oldest first), so a test can see each login's orders arrive from its own address.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from paper.errors import GttError, OrderError

__all__ = ["StaticIps", "ORDER_ROUTES", "GTT_ORDER_ROUTES", "STATIC_IP_ERRORCODE"]

GTT_ORDER_ROUTES = frozenset({"createRule", "modifyRule", "cancelRule"})
ORDER_ROUTES = frozenset({"placeOrder", "modifyOrder", "cancelOrder"}) | GTT_ORDER_ROUTES
STATIC_IP_ERRORCODE = "AB7001"


class StaticIps:
    """The registered address of each client code (upper case), and the order requests seen."""

    def __init__(self, registered: Mapping[str, str], *, keep: int = 10_000) -> None:
        self.registered = {code.upper(): address for code, address in registered.items()}
        self._seen: deque[dict[str, Any]] = deque(maxlen=keep)

    @property
    def enforced(self) -> bool:
        return bool(self.registered)

    def check(self, route: str, clientcode: str, peer: str, body: Mapping[str, Any]) -> None:
        """Remember the request; refuse it (OrderError, or GttError on a GTT route) if the rule forbids it."""
        refusal = self._refusal(clientcode, peer) if route in ORDER_ROUTES else None
        self._seen.append({"route": route, "clientcode": clientcode, "peer": peer,
                           "ordertag": str(body.get("ordertag") or ""), "refused": refusal or ""})
        if refusal is not None:
            error = GttError if route in GTT_ORDER_ROUTES else OrderError
            raise error(STATIC_IP_ERRORCODE, refusal)

    def _refusal(self, clientcode: str, peer: str) -> str | None:
        if not self.registered:
            return None
        address = self.registered.get(clientcode.upper())
        if address is None:
            return (f"Order refused by the static-IP rule: no static IP is registered for client {clientcode} "
                    f"(this one came from {peer or 'an unknown address'})")
        if peer != address:
            return (f"Order refused by the static-IP rule: client {clientcode} must send orders from {address}, "
                    f"this one came from {peer or 'an unknown address'}")
        return None

    def seen(self) -> list[dict[str, Any]]:
        """The order requests remembered, oldest first."""
        return list(self._seen)

    def clear(self) -> None:
        self._seen.clear()

