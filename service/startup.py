"""Start-up as the web app's lifespan runs it, and whether the service is ready (`GET /healthz`).

    starting ──started──────────────────────────────────────────▶ ready
        │ └──broker unreachable──▶ waiting ──broker answers──▶ starting
        │                          (retried: capped backoff with jitter)
        └──refused (login, settings) or broken──▶ failed

A broker that cannot be reached at start (connection refused, a timeout, a 5xx) is not a reason to
exit: the login is tried again and again while the web app already serves, `/healthz` answering 503
with the reason; once the broker answers, start-up goes on (recovery, subscriptions) and the service
turns ready. A login the broker refuses is final (`LoginRefused`): the command exits with its code
(`service/exits.py`), as it does for settings the runtime refuses.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from service.broker.errors import BrokerUnavailable, LoginFailed, RateLimited
from service.errors import LoginRefused, TickguardError

__all__ = ["Backoff", "Readiness", "Startup"]

log = logging.getLogger("tickguard.startup")

Hook = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    """Waits between tries: `first_s` doubling up to `cap_s`, each drawn from [(1 - jitter) × w, w] so
    that many services restarted together do not knock on the broker in step."""
    first_s: float = 0.5
    cap_s: float = 30.0
    jitter: float = 0.5

    def delay(self, tries: int, draw: Callable[[], float] = random.random) -> float:
        """The wait after the `tries`-th failed try (1, 2, …)."""
        ceiling = min(self.cap_s, self.first_s * 2 ** min(tries - 1, 32))
        return ceiling * (1 - self.jitter * draw())


@dataclass(eq=False)
class Readiness:
    """Where start-up stands: `state` is starting | waiting | ready | failed, `reason` says why not ready."""
    backoff: Backoff = field(default_factory=Backoff)
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    state: str = "starting"
    reason: str = "starting"
    failure: BaseException | None = None
    waiting: asyncio.Event = field(default_factory=asyncio.Event)  # set once start-up first waits for the broker
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # set once ready or failed

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    async def reach(self, login: str, connect: Callable[[], Awaitable[None]]) -> None:
        """Log in with `connect`, trying again while the broker cannot be reached; `LoginRefused` when it
        refuses the login itself."""
        tries = 0
        while True:
            try:
                await connect()
            except LoginFailed as exc:
                raise LoginRefused(login, str(exc)) from None
            except (BrokerUnavailable, RateLimited) as exc:
                tries += 1
                wait = self.backoff.delay(tries)
                self.state, self.reason = "waiting", f"broker unreachable for {login}: {exc} (try {tries}, next in {wait:.1f} s)"
                self.waiting.set()
                log.warning("broker unreachable at start: trying again", extra={"login": login, "error": str(exc),
                                                                                "tries": tries, "next_s": round(wait, 1)})
                await self.sleep(wait)
                continue
            if tries:
                self.state, self.reason = "starting", "starting"
                log.info("broker reachable: start-up goes on", extra={"login": login, "tries": tries + 1})
            return

    def started(self) -> None:
        self.state, self.reason = "ready", ""
        self.settled.set()

    def failed(self, exc: BaseException) -> None:
        self.state, self.reason, self.failure = "failed", f"start-up failed: {exc}", exc
        self.settled.set()


class Startup:
    """Runs `runtime.start()` for the lifespan: `begin` returns once the runtime has started, has failed,
    or waits for the broker (start-up then goes on in the background). `on_ready` hooks run once it is
    ready; `on_stop` hooks run before a ready runtime is stopped."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.readiness: Readiness = runtime.readiness
        self.on_ready: list[Hook] = []
        self.on_stop: list[Hook] = []
        self._task: asyncio.Task | None = None
        self._stopped = False

    async def begin(self) -> None:
        self._task = asyncio.create_task(self._run(), name="startup")
        waiting = asyncio.create_task(self.readiness.waiting.wait())
        await asyncio.wait({self._task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()

    async def _run(self) -> None:
        try:
            await self.runtime.start()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, TickguardError):  # a defect, not a refusal: its traceback belongs in the log
                log.exception("start-up failed")
            self.readiness.failed(exc)
            await self._stop_runtime()  # close what had opened before the failure
            return
        self.readiness.started()
        for hook in self.on_ready:
            await _quietly(hook, "a start-up hook failed")

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.readiness.ready and not self._stopped:
            for hook in self.on_stop:
                await _quietly(hook, "a shutdown hook failed")
        await self._stop_runtime()

    async def _stop_runtime(self) -> None:
        if not self._stopped:
            self._stopped = True
            await self.runtime.stop()


async def _quietly(hook: Hook, what: str) -> None:
    try:
        await hook()
    except Exception:  # a banner or a warning must never stop the service or its shutdown
        log.exception(what)
