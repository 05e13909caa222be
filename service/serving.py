"""Listening and serving for the commands: the port is taken before anything else starts, and a start-up
that fails ends the server and comes back out as its error.

`listen` binds at once, so a port in use is one clear error (`AddressInUse`, exit status 5) before
the runtime logs in anywhere. `serve` runs a web app made by `service.web.app.create_app` on such a
socket and stops it when its start-up fails (`service/startup.py`): the failure is raised here, for
the command to turn into its line and exit status (`service/exits.py`).
"""
from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

from service.errors import AddressInUse

__all__ = ["bound_port", "listen", "serve"]


def listen(host: str, port: int, what: str) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free port), or `AddressInUse` naming `what`."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise AddressInUse(what, host, port, f"not an address of this host ({exc.strerror or exc})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port left in TIME_WAIT is free
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise AddressInUse(what, host, port, reason) from None
    return sock


def bound_port(sock: socket.socket) -> int:
    return sock.getsockname()[1]


async def serve(app: Any, sock: socket.socket, *, log_level: str) -> None:
    """Serve `app` on `sock` until a signal or a failed start-up; raise that start-up's failure."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, access_log=False, log_config=None, log_level=log_level.lower(),
                                           proxy_headers=False))  # the allowlist decides whom to believe
    readiness = app.state.startup.readiness

    async def stop_on_failure() -> None:
        await readiness.settled.wait()
        if readiness.failure is not None:
            server.should_exit = True

    watcher = asyncio.create_task(stop_on_failure(), name="startup-watch")
    try:
        await server.serve(sockets=[sock])
    finally:
        watcher.cancel()
    if readiness.failure is not None:
        raise readiness.failure
