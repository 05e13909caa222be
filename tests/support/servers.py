"""Run an ASGI app on uvicorn in a background thread, on a free loopback port."""
from __future__ import annotations

import threading
import time

import uvicorn

__all__ = ["ServerThread"]


class ServerThread:
    """For tests whose client blocks (the official SDK): the server gets its own thread and loop."""

    def __init__(self, app, host: str = "127.0.0.1") -> None:
        config = uvicorn.Config(app, host=host, port=0, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self.server.run, name="test-server", daemon=True)
        self.host = host
        self.port = 0

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=20)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"
