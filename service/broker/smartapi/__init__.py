"""The Angel One SmartAPI adapter: REST on aiohttp, the two WebSockets on websockets.

Fixed file names: `config` (endpoints, login, pacing), `rest` (session and REST calls), `pacing`
(rate limits and priorities), `rows` (JSON rows to port values), `parsing` (binary ticks), `data`
(the tick stream), `updates` (the order-update stream), `adapter` (the `Broker` they make together).
"""
