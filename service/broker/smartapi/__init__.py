"""The Angel One SmartAPI adapter: REST on aiohttp, the two WebSockets on websockets.

Fixed file names: `config` (endpoints, login, pacing), `rest` (session and REST calls), `pacing`
(rate limits and priorities), `rows` (JSON rows to port values), `parsing` (binary ticks),
`subscriptions` (smart-stream's limits and requests), `data` (the tick stream on one socket),
`feeds` (a login's tick stream on up to three), `updates` (the order-update stream), `adapter` (the
`Broker` they make together).
"""
