"""The tickguard cluster: its roles meet on NATS JetStream.

`bus` is a thin, typed layer over nats-py (the command work queue per broker login, the event log,
core NATS for ephemeral things); `lease` is shard leadership with a fencing token, on the bus's
key-value bucket. The roles are written against these two.
"""
