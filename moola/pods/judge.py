"""Is a pod lost? Asked when a gate on it ended in RemoteUnavailable (moola.pods.spread). RunPod's
own word first: a pod it no longer reports RUNNING is lost. A RUNNING pod (or an API that cannot
say) is lost only when ssh stays unreachable for a whole window: a restarting sshd is back within
seconds, and calling a live pod lost ends it (with one pod, the run)."""

from __future__ import annotations

import logging
import time
from typing import Callable

from moola.core.errors import MoolaError, RemoteUnavailable

log = logging.getLogger("moola.pods.judge")
LOST_PROBE_S = 2.0  # the pause between ssh tries on a pod whose connection was lost


def why_lost(status: Callable[[], str], reach: Callable[[], None], window_s: float, pause_s: float = LOST_PROBE_S,
             clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> str | None:
    """Why the pod is lost, or None when it is not. ``status()``: RunPod's desiredStatus ("gone" when
    it has no such pod; MoolaError when the API is in trouble); ``reach()``: one ssh connection to the
    pod (RemoteUnavailable when it cannot be made)."""
    try:
        got = status()
        if got != "RUNNING":
            return f"RunPod reports it {got}"
    except MoolaError as exc:  # the API's own trouble: judge by ssh alone
        log.warning("RunPod API not answering (%s); judging by ssh", exc)
    last, tries, t0 = None, 0, clock()
    while True:
        try:
            tries += 1
            reach()
            return None
        except RemoteUnavailable as exc:
            last = exc
        if clock() - t0 >= window_s:
            return f"ssh unreachable {tries} times in {clock() - t0:.0f} s ({last})"
        sleep(pause_s)
