"""The cluster (README "Running as a cluster"): tickguard's roles in processes of their own, over NATS
JetStream and one PostgreSQL store.

    bus.py        streams, subjects, consumers and the lease bucket on JetStream (nats-py)
    lease.py      a guard shard's leadership with a fencing token; the executors' fence
    outbox.py     order commands committed with their alert, published after the commit
    commands.py   what crosses the bus: commands, trade versions, the shard of an instrument
    remote.py     the executor's stand-in for the engine; trade versions onto the bus
    intake.py     `tickguard intake`: webhooks, API, feed and dashboard
    executor.py   `tickguard executor --login CODE`: one login's orders
    guardian.py   `tickguard guard --shard i/n`: one shard's stop engine, a leader and standbys
    cli.py        the roles as commands
"""
