"""The reconnect machinery both SmartAPI sockets share (the sockets themselves: test_data, test_updates)."""
from __future__ import annotations

from service.broker.smartapi.config import StreamCredentials
from service.broker.smartapi.reconnect import Backoff, handshake_headers


def test_backoff_is_full_jitter_capped_and_resets_after_a_healthy_minute():
    backoff = Backoff(base_s=0.5, cap_s=30.0, draw=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    backoff.connected_for(59.9)
    assert backoff.next_delay() == 30
    backoff.connected_for(60)
    assert backoff.next_delay() == 0.5
    assert Backoff(draw=lambda: 0.0).next_delay() == 0


def test_the_handshake_sends_the_jwt_as_a_bearer_token_once():
    bare = StreamCredentials(clientcode="P0001", api_key="key", jwt_token="eyJ.x.y", feed_token="feed")
    headers = handshake_headers(bare)
    assert headers == {"Authorization": "Bearer eyJ.x.y", "x-api-key": "key", "x-client-code": "P0001",
                       "x-feed-token": "feed"}
    prefixed = StreamCredentials(clientcode="P0001", api_key="key", jwt_token="Bearer eyJ.x.y", feed_token="feed")
    assert handshake_headers(prefixed)["Authorization"] == "Bearer eyJ.x.y"
