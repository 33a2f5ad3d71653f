"""Is a pod lost (moola.pods.judge)? RunPod's word first; a RUNNING pod only after ssh stayed away
for the whole window (a fake clock: no real waiting)."""

from __future__ import annotations

from moola.core.errors import RemotePermanent, RemoteUnavailable
from moola.pods.judge import why_lost


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def reach_after(n: int):
    tries = []

    def reach():
        tries.append(1)
        if len(tries) <= n:
            raise RemoteUnavailable("connection refused")
    return reach, tries


def test_what_runpod_says_is_believed_at_once():
    reach, tries = reach_after(0)
    assert why_lost(lambda: "EXITED", reach, 20) == "RunPod reports it EXITED"
    assert why_lost(lambda: "gone", reach, 20) == "RunPod reports it gone" and tries == []


def test_a_running_pod_whose_ssh_comes_back_within_the_window_is_not_lost():
    clock, (reach, tries) = Clock(), reach_after(4)
    assert why_lost(lambda: "RUNNING", reach, 20, 2.0, clock, clock.sleep) is None
    assert len(tries) == 5 and clock.t == 8.0


def test_a_running_pod_whose_ssh_stays_away_for_the_window_is_lost():
    clock, (reach, _) = Clock(), reach_after(100)
    why = why_lost(lambda: "RUNNING", reach, 20, 2.0, clock, clock.sleep)
    assert why == "ssh unreachable 11 times in 20 s (connection refused)" and clock.t == 20.0


def test_an_api_in_trouble_leaves_the_judgement_to_ssh():
    clock, (reach, _) = Clock(), reach_after(0)

    def status():
        raise RemotePermanent("RunPod API: 503")
    assert why_lost(status, reach, 20, 2.0, clock, clock.sleep) is None
