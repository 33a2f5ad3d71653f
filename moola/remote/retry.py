"""Retry transient remote errors with capped exponential backoff and jitter, up to a deadline."""

from __future__ import annotations

import logging
import random
import time
from typing import Callable, TypeVar

from moola.core.errors import ConfigError, RemotePermanent, RemoteUnavailable

log = logging.getLogger("moola.remote")
T = TypeVar("T")


def backoff_delays(base: float = 1.0, factor: float = 2.0, cap: float = 30.0, jitter: float = 0.2,
                   rng: random.Random | None = None):
    """Endless delays: base * factor**n, capped at ``cap``, each scaled by 1 +- jitter."""
    rng = rng or random.Random()
    n = 0
    while True:
        d = min(cap, base * factor ** n)
        yield d * (1 + rng.uniform(-jitter, jitter))
        n += 1


def call_with_retry(fn: Callable[[], T], retry_for: float, base: float = 1.0, cap: float = 30.0,
                    sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                    give_up: Callable[[], str | None] | None = None) -> T:
    """Call ``fn``; on RemoteUnavailable wait and try again until ``retry_for`` seconds have passed.

    Permanent errors propagate at once. The last transient error propagates at the deadline.
    ``give_up``: asked before each wait; a reason it returns ends the retries at once (RemotePermanent).
    """
    deadline = clock() + retry_for
    delays = backoff_delays(base=base, cap=cap)
    attempt = 1
    while True:
        try:
            return fn()
        except RemoteUnavailable as exc:
            why = give_up() if give_up is not None else None
            if why:
                raise RemotePermanent(f"{why} (while retrying: {exc})") from exc
            delay = next(delays)
            left = deadline - clock()
            if left <= 0:
                raise
            delay = min(delay, left)
            log.warning("attempt %d: %s; retrying in %.1f s (%.0f s left)", attempt, exc, delay, left)
            sleep(delay)
            attempt += 1


def check_retry_for(seconds: float) -> float:
    """--retry-for: 0 or more seconds; nan and inf are refused (either would retry forever)."""
    if not 0 <= seconds < float("inf"):
        raise ConfigError(f"--retry-for {seconds}: expected 0 or more seconds")
    return seconds
