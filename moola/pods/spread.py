"""A run's units spread over its slots (pods): one unit per slot at a time, dependencies kept in
order, and the unit of a slot that was lost moved to a live one.

    spread(units, slots, start, judge) -> Spread

``start(unit, inputs, slot)`` launches ``unit`` on ``slot`` with the results of the units it
needs and returns ``(waitable, result)``: a ``concurrent.futures.Future`` that completes when the
unit ends, and a function that returns its value or raises its error. The `gates` flow launches
Prefect tasks (flows/gates.py), the tests threads. ``judge(slot, exc)`` is asked only when a
unit ended in RemoteUnavailable: the reason the slot is lost (it gets no more work), or None
when it still answers (the unit is tried again, there or elsewhere). Any other error is the
unit's own: nothing new starts, the running units finish, and it propagates.

The bookkeeping (where each unit ran, which moved and why, which slots were lost) is returned
for the run's record; every function here but ``spread`` is pure.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Callable

from moola.core.errors import ConfigError, PodsLost, RemoteUnavailable

log = logging.getLogger("moola.pods.spread")

MAX_ATTEMPTS = 4  # tries of one unit (each after a transient failure) before the run gives up on it


@dataclass(frozen=True)
class Unit:
    name: str
    needs: tuple[str, ...] = ()


@dataclass
class Spread:
    results: dict[str, object] = field(default_factory=dict)
    placements: list[dict] = field(default_factory=list)  # {unit, slot, attempt, outcome, seconds}
    moves: list[dict] = field(default_factory=list)       # {unit, from, to, why}
    lost: dict[str, str] = field(default_factory=dict)    # slot name -> why it was given up

    def units_on(self, slot: str) -> list[str]:
        """The units that finished on ``slot``, in order."""
        return [p["unit"] for p in self.placements if p["slot"] == slot and p["outcome"] == "done"]


def check_units(units: list[Unit]) -> None:
    """Names unique, every dependency a unit listed before it (so the graph has no cycle)."""
    seen: set[str] = set()
    for u in units:
        if u.name in seen:
            raise ConfigError(f"unit {u.name!r} is listed twice")
        missing = [n for n in u.needs if n not in seen]
        if missing:
            raise ConfigError(f"unit {u.name!r} needs {', '.join(missing)}, which is not listed before it")
        seen.add(u.name)


def next_ready(pending: list[Unit], done: dict) -> Unit | None:
    """The first pending unit whose dependencies are all done (list order is priority)."""
    return next((u for u in pending if all(n in done for n in u.needs)), None)


def spread(units: list[Unit], slots: list, start: Callable[[Unit, dict, object], tuple[Future, Callable[[], object]]],
           judge: Callable[[object, Exception], str | None], name: Callable[[object], str] = str,
           max_attempts: int = MAX_ATTEMPTS, clock: Callable[[], float] = time.monotonic) -> Spread:
    """Run every unit; see the module docstring. Raises PodsLost when no slot is left."""
    check_units(units)
    out = Spread()
    pending, free = list(units), list(slots)
    running: dict[Future, tuple[Unit, object, Callable, float]] = {}
    tries: Counter = Counter()
    open_moves: dict[str, dict] = {}  # unit -> its last move, until it is placed again
    failure: BaseException | None = None
    while running or (pending and failure is None):
        while failure is None and free:
            unit = next_ready(pending, out.results)
            if unit is None:
                break
            slot = free.pop(0)
            pending.remove(unit)
            tries[unit.name] += 1
            if unit.name in open_moves:
                open_moves.pop(unit.name)["to"] = name(slot)
            log.info("unit %s -> %s%s", unit.name, name(slot),
                     f" (try {tries[unit.name]})" if tries[unit.name] > 1 else "")
            waitable, result = start(unit, {n: out.results[n] for n in unit.needs}, slot)
            running[waitable] = (unit, slot, result, clock())
        if not running:
            if pending and failure is None:
                lost = "; ".join(f"{k}: {v}" for k, v in out.lost.items())
                failure = PodsLost(f"every pod of the run was lost ({lost}); {len(pending)} unit(s) never "
                                   f"finished: {', '.join(u.name for u in pending)}")
            break
        finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for waitable in finished:
            unit, slot, result, t0 = running.pop(waitable)
            place = {"unit": unit.name, "slot": name(slot), "attempt": tries[unit.name],
                     "seconds": round(clock() - t0, 2)}
            try:
                out.results[unit.name] = result()
                out.placements.append({**place, "outcome": "done"})
                free.append(slot)
            except RemoteUnavailable as exc:
                why = judge(slot, exc)
                out.placements.append({**place, "outcome": f"lost pod: {why}" if why else f"transient: {exc}"})
                if why:
                    out.lost[name(slot)] = why
                    log.warning("%s lost (%s): unit %s goes to another pod", name(slot), why, unit.name)
                else:
                    free.append(slot)
                if tries[unit.name] >= max_attempts:
                    failure = failure or exc
                    continue
                open_moves[unit.name] = {"unit": unit.name, "from": name(slot), "to": None,
                                         "why": why or f"transient: {exc}"}
                out.moves.append(open_moves[unit.name])
                pending.insert(0, unit)
            except Exception as exc:  # the unit's own failure: let what runs finish, then raise it
                out.placements.append({**place, "outcome": f"failed: {type(exc).__name__}"})
                failure = failure or exc
    if failure is not None:
        raise failure
    return out
