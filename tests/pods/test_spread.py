"""moola.pods.spread: units over slots with threads standing in for the pods' tasks."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from moola.core.errors import ConfigError, GateCrashed, PodsLost, RemoteUnavailable
from moola.pods.spread import Unit, check_units, next_ready, spread


class Pods:
    """Slots 'a', 'b', ... run a unit's ``work(unit, slot, inputs)`` in a thread; records overlap."""

    def __init__(self, work):
        self.work, self.pool = work, ThreadPoolExecutor(8)
        self.busy: dict[str, str] = {}
        self.overlap = []  # a slot asked to run two units at once
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, dict]] = []

    def start(self, unit, inputs, slot):
        with self.lock:
            if slot in self.busy:
                self.overlap.append((slot, self.busy[slot], unit.name))
            self.busy[slot] = unit.name
            self.seen.append((unit.name, slot, inputs))

        def run():
            try:
                return self.work(unit, slot, inputs)
            finally:
                with self.lock:
                    self.busy.pop(slot, None)
        fut = self.pool.submit(run)
        return fut, fut.result


GATES = [Unit("baseline"), Unit("pretrain"), Unit("minirocket", ("baseline",)), Unit("augment", ("baseline",)),
         Unit("transfer", ("baseline", "pretrain"))]


def test_units_spread_over_every_slot_one_at_a_time_and_after_what_they_need():
    done_at = {}

    def work(unit, slot, inputs):
        for need in unit.needs:  # a dependency had finished before this unit started
            assert need in done_at and inputs[need] == f"{need}-out"
        time.sleep(0.05)
        done_at[unit.name] = time.monotonic()
        return f"{unit.name}-out"

    pods = Pods(work)
    out = spread(GATES, ["a", "b", "c"], pods.start, lambda s, e: None)
    assert out.results == {u.name: f"{u.name}-out" for u in GATES}
    assert pods.overlap == [] and out.moves == [] and out.lost == {}
    assert {p["slot"] for p in out.placements} == {"a", "b", "c"}
    # baseline and pretrain start together (nothing between them), transfer last
    assert [s[0] for s in pods.seen[:2]] == ["baseline", "pretrain"] and pods.seen[-1][0] == "transfer"
    assert sorted(sum((out.units_on(s) for s in "abc"), [])) == sorted(u.name for u in GATES)


def test_the_unit_of_a_lost_slot_moves_to_a_live_one_and_the_lost_slot_gets_no_more_work():
    def work(unit, slot, inputs):
        time.sleep(0.05)
        if slot == "b":
            raise RemoteUnavailable("connection to b lost while running a command")
        return unit.name

    judged = []

    def judge(slot, exc):
        judged.append((slot, str(exc)))
        return "ssh refused" if slot == "b" else None

    pods = Pods(work)
    units = [Unit(f"u{i}") for i in range(4)]
    out = spread(units, ["a", "b"], pods.start, judge)
    assert out.results == {u.name: u.name for u in units}
    assert out.lost == {"b": "ssh refused"} and judged == [("b", "connection to b lost while running a command")]
    assert out.moves == [{"unit": "u1", "from": "b", "to": "a", "why": "ssh refused"}]
    assert [s for u, s, _ in pods.seen].count("b") == 1  # nothing more went to b
    assert sorted(out.units_on("a")) == ["u0", "u1", "u2", "u3"] and out.units_on("b") == []
    assert [p["outcome"] for p in out.placements if p["slot"] == "b"] == ["lost pod: ssh refused"]


def test_a_transient_failure_on_a_live_slot_is_tried_again_up_to_the_limit():
    calls = []

    def flaky(unit, slot, inputs):
        calls.append(unit.name)
        if unit.name == "x" and calls.count("x") < 3:
            raise RemoteUnavailable("reset")
        if unit.name == "never":
            raise RemoteUnavailable("reset again")
        return 1

    out = spread([Unit("x")], ["a"], Pods(flaky).start, lambda s, e: None)
    assert out.results == {"x": 1} and len(out.moves) == 2 and out.moves[0]["to"] == "a"
    assert out.moves[0]["why"] == "transient: reset" and out.lost == {}
    with pytest.raises(RemoteUnavailable, match="reset again"):
        spread([Unit("never")], ["a"], Pods(flaky).start, lambda s, e: None, max_attempts=3)
    assert calls.count("never") == 3


def test_every_slot_lost_fails_the_run_naming_the_pods_and_the_units_left():
    def work(unit, slot, inputs):
        raise RemoteUnavailable(f"{slot} gone")

    with pytest.raises(PodsLost) as err:
        spread([Unit("u0"), Unit("u1", ("u0",))], ["a", "b"], Pods(work).start, lambda s, e: f"{s} refused ssh")
    msg = str(err.value)
    assert "a: a refused ssh" in msg and "b: b refused ssh" in msg and "u0, u1" in msg


def test_a_units_own_failure_stops_new_work_lets_running_units_finish_and_propagates():
    finished = []

    def work(unit, slot, inputs):
        if unit.name == "bad":
            raise GateCrashed("gate bad crashed (exit 1)")
        time.sleep(0.3)
        finished.append(unit.name)
        return 1

    pods = Pods(work)
    with pytest.raises(GateCrashed):
        spread([Unit("bad"), Unit("slow"), Unit("later", ("bad",)), Unit("after")], ["a", "b"], pods.start,
               lambda s, e: None)
    assert finished == ["slow"] and [u for u, _, _ in pods.seen] == ["bad", "slow"]


def test_unit_lists_are_checked_before_anything_runs():
    with pytest.raises(ConfigError, match="'b' needs c, which is not listed before it"):
        check_units([Unit("a"), Unit("b", ("c",)), Unit("c")])
    with pytest.raises(ConfigError, match="listed twice"):
        check_units([Unit("a"), Unit("a")])
    assert next_ready([Unit("b", ("a",)), Unit("c")], {}) == Unit("c")
    assert next_ready([Unit("b", ("a",))], {"a": 1}) == Unit("b", ("a",))
